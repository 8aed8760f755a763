"""The Evaluator's executor (components/evaluator/executor.py) against TFX's own TFMA executor on
the same examples, models and eval config: the same metrics per slice, the same validation
result and blessing; and what it rejects."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as keys
from tfx.utils import proto_utils

from components.evaluator.executor import Executor, check_supported, slice_features
from pipeline.config import EvaluationConfig
from pipeline.pipeline import eval_config

RNG = np.random.default_rng(3)
EXAMPLES = 300


class _RatingModel(tf.Module):
    """serving_default(examples) → {"rating"}: a rating from the item id, plus an offset."""

    def __init__(self, offset: float, nan_every: int = 0):
        """nan_every: a NaN rating for every nan_every-th item (0: none)."""
        super().__init__()
        self._offset = offset
        self._nan_every = nan_every

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        item = tf.io.parse_example(examples, {"item": tf.io.FixedLenFeature([], tf.int64)})
        rating = 2.0 + tf.cast(item["item"] % 4, tf.float32) * 0.7 + self._offset
        if self._nan_every:
            rating = tf.where(item["item"] % self._nan_every == 0, np.nan, rating)
        return {"rating": rating}


def _model(folder, offset: float, nan_every: int = 0):
    model = standard_artifacts.Model()
    model.uri = str(folder)
    module = _RatingModel(offset, nan_every)
    tf.saved_model.save(module, os.path.join(model.uri, "Format-Serving"),
                        signatures={"serving_default": module.serve})
    return model


def _example(index: int) -> bytes:
    rating = np.clip(np.round(2.0 + index % 4 * 0.7 + RNG.normal(0, 0.6)), 1, 5)
    features = {"rating": [int(rating)], "item": [index],
                "age_group": [RNG.choice([b"18-24", b"25-34", b"35-44"])],
                "year": [int(RNG.integers(1990, 1993))],
                # A repeated value (TFMA slices the example once under it), some examples none.
                "genres": list(RNG.choice([b"Drama", b"Comedy", b"War"], index % 3))}
    if index % 7:  # some examples lack a slice feature: TFMA leaves them out of its slices
        features["gender"] = [RNG.choice([b"F", b"M"])]
    return tf.train.Example(features=tf.train.Features(feature={
        name: (tf.train.Feature(int64_list=tf.train.Int64List(value=values))
               if isinstance(values[0], int) else
               tf.train.Feature(bytes_list=tf.train.BytesList(value=values)))
        for name, values in features.items() if values})).SerializeToString()


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path_factory.mktemp("examples"))
    artifact.split_names = json.dumps(["train", "eval"])
    os.makedirs(os.path.join(artifact.uri, "Split-eval"))
    with tf.io.TFRecordWriter(os.path.join(artifact.uri, "Split-eval", "data.tfrecord.gz"),
                              options="GZIP") as writer:
        for index in range(EXAMPLES):
            writer.write(_example(index))
    return artifact


def _evaluate(executor, folder, examples, model, baseline=None, config=None):
    """(metrics by slice, validation result, blessing files, blessed property)."""
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(folder / "evaluation"), str(folder / "blessing")
    os.makedirs(evaluation.uri)
    os.makedirs(blessing.uri)
    inputs = {keys.EXAMPLES_KEY: [examples], keys.MODEL_KEY: [model]}
    if baseline is not None:
        inputs[keys.BASELINE_MODEL_KEY] = [baseline]
    executor.Do(inputs, {keys.EVALUATION_KEY: [evaluation], keys.BLESSING_KEY: [blessing]}, {
        keys.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
            config or eval_config(EvaluationConfig())),
        keys.EXAMPLE_SPLITS_KEY: json.dumps(["eval"])})
    metrics = {key: values[""][""] for key, values in
               tfma.load_eval_result(evaluation.uri).slicing_metrics}
    return (metrics, _comparable(tfma.load_validation_result(evaluation.uri)),
            sorted(os.listdir(blessing.uri)),
            blessing.get_int_custom_property("blessed"))


def _comparable(validation):
    """The validation result with each failing metric's value rounded (summation order)."""
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            failure.metric_value.double_value.value = round(
                failure.metric_value.double_value.value, 9)
    return validation


@pytest.mark.parametrize("candidate_offset,baseline_offset,blessed", [
    (0.0, None, True),  # no model in service: the absolute threshold alone
    (0.0, 0.3, True),  # better than the model in service
    (0.3, 0.0, False),  # worse than the model in service by more than max_rmse_increase
])
def test_same_results_as_tfma(tmp_path, examples, candidate_offset, baseline_offset, blessed):
    model = _model(tmp_path / "candidate", candidate_offset)
    baseline = None if baseline_offset is None else _model(tmp_path / "baseline",
                                                           baseline_offset)
    ours = _evaluate(Executor(), tmp_path / "ours", examples, model, baseline)
    tfmas = _evaluate(tfx_evaluator.Executor(), tmp_path / "tfma", examples, model, baseline)
    _assert_same(ours, tfmas)
    assert len(ours[0]) == 1 + 2 + 3  # overall, gender F/M, three age groups
    assert ours[1].validation_ok is blessed
    assert bool(ours[1].metric_validations_per_slice) is not blessed
    assert ours[2] == ["BLESSED" if blessed else "NOT_BLESSED"]


def _assert_same(ours, tfmas):
    assert set(ours[0]) == set(tfmas[0])
    for slice_key, values in tfmas[0].items():
        assert set(ours[0][slice_key]) == set(values)
        for name, value in values.items():
            assert ours[0][slice_key][name]["doubleValue"] == pytest.approx(
                value["doubleValue"], abs=1e-9, nan_ok=True), (slice_key, name)
    assert ours[1:] == tfmas[1:]


def test_same_results_as_tfma_for_other_slicings_and_nan_ratings(tmp_path, examples):
    """An int feature, a multivalent one with repeats, a crossing listed out of order, and a
    model that rates some examples NaN: counted as examples, left out of RMSE and MAE."""
    config = eval_config(EvaluationConfig())
    for features in (["year"], ["genres"], ["gender", "age_group"]):
        config.slicing_specs.add(feature_keys=features)
    model = _model(tmp_path / "candidate", 0.0, nan_every=5)
    baseline = _model(tmp_path / "baseline", 0.2)
    ours = _evaluate(Executor(), tmp_path / "ours", examples, model, baseline, config)
    tfmas = _evaluate(tfx_evaluator.Executor(), tmp_path / "tfma", examples, model, baseline,
                      config)
    _assert_same(ours, tfmas)
    assert (("age_group", "18-24"), ("gender", "F")) in ours[0]
    assert (("year", 1991),) in ours[0]
    overall = ours[0][()]
    assert overall["example_count"]["doubleValue"] == EXAMPLES


def test_missing_label_is_an_error(tmp_path):
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / "examples")
    artifact.split_names = json.dumps(["eval"])
    os.makedirs(os.path.join(artifact.uri, "Split-eval"))
    unlabeled = tf.train.Example(features=tf.train.Features(feature={
        "item": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}))
    with tf.io.TFRecordWriter(os.path.join(artifact.uri, "Split-eval", "data.gz"),
                              options="GZIP") as writer:
        writer.write(_example(0))
        writer.write(unlabeled.SerializeToString())
    with pytest.raises(Exception, match="exactly one label 'rating'"):
        _evaluate(Executor(), tmp_path, artifact, _model(tmp_path / "model", 0.0))


def test_unsupported_config_is_named():
    config = eval_config(EvaluationConfig())
    config.metrics_specs[0].metrics.add(class_name="MeanSquaredError")
    with pytest.raises(ValueError, match="'MeanSquaredError' is not computed"):
        check_supported(config)
    config = eval_config(EvaluationConfig())
    config.slicing_specs.add(feature_values={"gender": "F"})
    with pytest.raises(ValueError, match="only feature_keys"):
        check_supported(config)


def test_a_module_file_is_refused(tmp_path, examples):
    """TFX's Evaluator would load custom extractors from it; this executor would not."""
    with pytest.raises(ValueError, match="module_file"):
        Executor().Do({keys.EXAMPLES_KEY: [examples], keys.MODEL_KEY: [_model(tmp_path, 0.0)]},
                      {}, {keys.EVAL_CONFIG_KEY: proto_utils.proto_to_json(
                          eval_config(EvaluationConfig())),
                           keys.MODULE_FILE_KEY: "evaluator_module.py"})


def test_slicings_are_taken_once_and_default_to_overall():
    config = eval_config(EvaluationConfig())
    config.slicing_specs.add(feature_keys=["gender"])
    assert slice_features(config) == [(), ("gender",), ("age_group",), ("user_activity",)]
    assert slice_features(tfma.EvalConfig()) == [()]
    config = eval_config(EvaluationConfig())
    config.metrics_specs[0].query_key = "user_id"
    with pytest.raises(ValueError, match="query_key"):
        check_supported(config)
