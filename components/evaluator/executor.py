"""The Evaluator: TFX's component with an executor that computes the rating metrics a batch of
examples at a time instead of TFMA's one example at a time.

On MovieLens-100K's 20K eval examples TFMA took ~13 s, nearly all of it per-example Python:
unbatching every feature of every example, slicing, and combining 80K (slice, example) pairs.
Here each batch is decoded once, scored by each model's serving signature, and reduced to error
sums per slice with numpy. The outputs are TFMA's and TFX's own — its writers, its threshold
validation (`metrics_validator`), the Evaluator's blessing — so `tfma.load_eval_result`,
`tfma.load_validation_result` and the release gate read them as before.

It computes what `pipeline.pipeline.eval_config` configures: ExampleCount and
`components.evaluator.metrics`' RMSE and MAE, unweighted, over slices by feature keys (sliced
as TFMA slices them: one or several features, string, int or multivalent); an eval config asking for
anything else is rejected by name.
"""

import os
from typing import Any, Dict, Iterable, List, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.utils import shared
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics.metric_types import MetricKey
from tensorflow_model_analysis.writers import eval_config_writer
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as writers
from tfx import types
from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as keys
from tfx.utils import io_utils, json_utils, path_utils, proto_utils
from tfx_bsl.coders import example_coder

from components.evaluator.metrics import MAE_NAME, RMSE_NAME, ErrorSums

# The metric classes this executor computes, by the name TFMA reports each under.
SUPPORTED_METRICS = {"ExampleCount": "example_count",
                     "RootMeanSquaredError": RMSE_NAME,
                     "MeanAbsoluteRatingError": MAE_NAME}
BATCH = dict(min_batch_size=1024, max_batch_size=8192)
OVERALL: Tuple = ()


def check_supported(eval_config: tfma.EvalConfig) -> None:
    """ValueError naming the first part of the config this executor does not compute."""
    for spec in eval_config.model_specs:
        if spec.example_weight_key or spec.example_weight_keys:
            raise ValueError(f"model {spec.name!r}: example weights are not supported")
    for metrics_spec in eval_config.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name not in SUPPORTED_METRICS:
                raise ValueError(f"metric {metric.class_name!r} is not computed by "
                                 f"{__name__} (supported: {sorted(SUPPORTED_METRICS)})")
            if metric.config:
                raise ValueError(f"metric {metric.class_name!r}: a config is not supported")
        if (metrics_spec.HasField("binarize") or metrics_spec.HasField("aggregate")
                or metrics_spec.query_key):
            raise ValueError("metrics spec: binarize, aggregate and query_key are not supported")
        if metrics_spec.output_names or metrics_spec.example_weights.weighted:
            raise ValueError("metrics spec: output names and example weights are not supported")
    for option in ("min_slice_size", "compute_confidence_intervals"):
        if eval_config.options.HasField(option) and getattr(eval_config.options, option).value:
            raise ValueError(f"options.{option} is not supported")
    if eval_config.cross_slicing_specs:
        raise ValueError("cross slicing specs are not supported")
    for slicing in eval_config.slicing_specs:
        if slicing.feature_values or slicing.slice_keys_sql:
            raise ValueError(f"slicing spec {slicing}: only feature_keys are supported")


def slice_features(eval_config: tfma.EvalConfig) -> List[Tuple[str, ...]]:
    """Each slicing's features, once each; the overall slice alone where none is given (as
    TFMA)."""
    return list(dict.fromkeys(tuple(slicing.feature_keys)
                              for slicing in eval_config.slicing_specs)) or [OVERALL]


def _values(batch: pa.RecordBatch, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(example row, value) of every value of a feature in a batch, bytes as text (as TFMA
    slices); absent → no pairs."""
    if name not in batch.schema.names:
        return np.zeros(0, np.int64), np.zeros(0, object)
    column = batch.column(name)
    rows = pc.list_parent_indices(column).to_numpy()
    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    if values.dtype == object:
        values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], object)
    return rows.astype(np.int64), values


def _slice_rows(batch: pa.RecordBatch, features: Tuple[str, ...]
                ) -> Iterable[Tuple[Tuple, np.ndarray]]:
    """(slice key, example rows) of each slice the batch's examples fall in: the crossing of
    the features' values, TFMA's slice keys ((feature, value), ...)."""
    keyed = [(OVERALL, np.arange(batch.num_rows))]
    for name in features:
        rows, values = _values(batch, name)
        crossed = []
        for key, key_rows in keyed:
            inside = np.isin(rows, key_rows)
            # Python scalars (TFMA serializes int, float, str and bytes), each example once.
            for value in np.unique(values[inside]).tolist():
                crossed.append((key + ((name, value),),
                                np.unique(rows[inside & (values == value)])))
        keyed = crossed
    # TFMA's slice keys list their columns in sorted order.
    return [(tuple(sorted(key)), rows) for key, rows in keyed]


class _Signatures:
    """The models' signatures by model name, in an object Beam's Shared can hold."""

    def __init__(self, by_model):
        self.by_model = by_model


class _ErrorSumsPerSlice(beam.DoFn):
    """A batch of serialized examples → ((slice key, model name), [examples, examples with a
    prediction and a label, Σ|error|, Σ error²]) per slice."""

    def __init__(self, models: Dict[str, Tuple[str, str, str, str]],
                 slicings: List[Tuple[str, ...]]):
        """models: name → (SavedModel path, signature, label key, prediction key)."""
        self._models = models
        self._slicings = slicings
        # One copy of the models per worker process, whatever its threads (as TFMA shares).
        self._shared = shared.Shared()
        self._loaded = None
        self._decoder = None

    def setup(self):
        self._decoder = example_coder.ExamplesToRecordBatchDecoder()
        self._loaded = self._shared.acquire(lambda: _Signatures(
            {name: tf.saved_model.load(path).signatures[signature]
             for name, (path, signature, _, _) in self._models.items()}))

    def process(self, serialized: List[bytes]):
        batch = self._decoder.DecodeBatch(serialized)
        slices = [sliced for features in self._slicings
                  for sliced in _slice_rows(batch, features)]
        for name, (_, _, label_key, prediction_key) in self._models.items():
            labels = self._single_values(batch, label_key, f"label {label_key!r}")
            predicted = self._loaded.by_model[name](
                examples=tf.constant(serialized))[prediction_key]
            predicted = np.reshape(predicted.numpy(), [-1]).astype(np.float64)
            if predicted.shape != labels.shape:
                raise ValueError(f"model {name!r}: {predicted.size} predictions "
                                 f"{prediction_key!r} for {labels.size} examples")
            errors = predicted - labels
            known = ~np.isnan(errors)
            for key, rows in slices:
                error = errors[rows[known[rows]]]
                yield (key, name), np.array([rows.size, error.size, np.abs(error).sum(),
                                             np.square(error).sum()])

    @staticmethod
    def _single_values(batch: pa.RecordBatch, name: str, what: str) -> np.ndarray:
        rows, values = _values(batch, name)
        if not np.array_equal(rows, np.arange(batch.num_rows)):
            raise ValueError(f"every eval example needs exactly one {what}: a batch of "
                             f"{batch.num_rows} examples had {rows.size} values in "
                             f"{np.unique(rows).size} of them")
        return values.astype(np.float64)


def _metrics(key: Tuple, sums_by_model: Dict[str, np.ndarray], names: List[str],
             baseline: str) -> Tuple[Tuple, Dict[MetricKey, float]]:
    """(slice key, {MetricKey: value}) as TFMA reports them: each model's, and each
    candidate's difference from the baseline where there is one."""
    def metric(model: str, name: str, is_diff: bool = False) -> MetricKey:
        return MetricKey(name=name, model_name=model, example_weighted=False, is_diff=is_diff)

    values = {}
    for model, (examples, count, absolute, squared) in sums_by_model.items():
        errors = ErrorSums(count, absolute, squared)
        values.update({metric(model, name): float(examples) if name == "example_count" else
                       errors.mean(name) for name in names})
    for model in sums_by_model if baseline else ():
        if model != baseline:
            values.update({metric(model, name, is_diff=True):
                           values[metric(model, name)] - values[metric(baseline, name)]
                           for name in names})
    return key, values


@beam.ptransform_fn
def RatingMetrics(examples, eval_config: tfma.EvalConfig,  # noqa: N802 - a PTransform
                  model_paths: Dict[str, str]):
    """Serialized examples → (slice key, {MetricKey: value}) per slice, TFMA's metrics form."""
    models = {spec.name: (model_paths[spec.name], spec.signature_name or "serving_default",
                          spec.label_key, spec.prediction_key)
              for spec in eval_config.model_specs}
    baseline = next((spec.name for spec in eval_config.model_specs if spec.is_baseline), "")
    names = sorted({SUPPORTED_METRICS[metric.class_name]
                    for spec in eval_config.metrics_specs for metric in spec.metrics})
    return (examples
            | "Batch" >> beam.BatchElements(**BATCH)
            | "ErrorSums" >> beam.ParDo(_ErrorSumsPerSlice(models, slice_features(eval_config)))
            | "SumPerSliceAndModel" >> beam.CombinePerKey(sum)
            | "BySlice" >> beam.MapTuple(lambda key, sums: (key[0], (key[1], sums)))
            | "GroupModels" >> beam.GroupByKey()
            | "ToMetrics" >> beam.MapTuple(
                lambda key, sums: _metrics(key, dict(sums), names, baseline)))


class Executor(tfx_evaluator.Executor):
    """TFX's Evaluator executor with RatingMetrics in place of TFMA's extract-and-evaluate."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],  # noqa: N802 - TFX's name
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        if not input_dict.get(keys.MODEL_KEY):
            raise ValueError(f"{__name__} evaluates a model: none was given")
        if not exec_properties.get(keys.EVAL_CONFIG_KEY):
            raise ValueError(f"{__name__} needs an eval_config (feature_slicing_spec is TFMA's "
                             "deprecated form)")
        if exec_properties.get(keys.MODULE_FILE_KEY) or exec_properties.get(keys.MODULE_PATH_KEY):
            raise ValueError(f"{__name__} computes the metrics itself: a module_file's custom "
                             "extractors or eval shared model would not be used")
        has_baseline = bool(input_dict.get(keys.BASELINE_MODEL_KEY))
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[keys.EVAL_CONFIG_KEY], eval_config)
        eval_config = tfma.utils.update_eval_config_with_defaults(
            eval_config, has_baseline=has_baseline, rubber_stamp=True)
        tfma.utils.verify_eval_config(eval_config)
        check_supported(eval_config)
        model_paths = {spec.name: path_utils.eval_model_path(artifact_utils.get_single_uri(
            input_dict[keys.BASELINE_MODEL_KEY if spec.is_baseline else keys.MODEL_KEY]))
            for spec in eval_config.model_specs}
        splits = json_utils.loads(exec_properties.get(keys.EXAMPLE_SPLITS_KEY) or "null")
        patterns = [io_utils.all_files_pattern(uri) for split in splits or ["eval"]
                    for uri in artifact_utils.get_split_uris(input_dict[keys.EXAMPLES_KEY],
                                                             split)]
        output_uri = artifact_utils.get_single_uri(output_dict[keys.EVALUATION_KEY])
        with self._make_beam_pipeline() as pipeline:
            examples = ([pipeline | f"Read[{index}]" >> beam.io.ReadFromTFRecord(pattern)
                         for index, pattern in enumerate(patterns)]
                        | "Flatten" >> beam.Flatten())
            metrics = examples | "RatingMetrics" >> RatingMetrics(eval_config, model_paths)
            evaluation = {
                tfma.METRICS_KEY: metrics,
                tfma.VALIDATIONS_KEY: metrics | "Validate" >> beam.Map(
                    metrics_validator.validate_metrics, eval_config)}
            _ = evaluation | "Write" >> tfma.WriteResults(writers=[
                eval_config_writer.EvalConfigWriter(output_uri, eval_config,
                                                    model_locations=model_paths),
                writers.MetricsPlotsAndValidationsWriter(
                    output_paths={key: os.path.join(output_uri, key) for key in (
                        tfma.METRICS_KEY, tfma.PLOTS_KEY, tfma.ATTRIBUTIONS_KEY,
                        tfma.VALIDATIONS_KEY)},
                    eval_config=eval_config)])
        if tfma.metrics.metric_thresholds_from_metrics_specs(eval_config.metrics_specs,
                                                             eval_config=eval_config):
            self._bless(input_dict, output_dict, exec_properties, output_uri)

    @staticmethod
    def _bless(input_dict, output_dict, exec_properties, output_uri: str) -> None:
        """The Evaluator's blessing, as TFX's executor writes it (where thresholds are set)."""
        blessing = artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY])
        model = input_dict[keys.MODEL_KEY][0]
        blessing.set_string_custom_property(
            constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                                         model.id)
        if input_dict.get(keys.BASELINE_MODEL_KEY):
            baseline = input_dict[keys.BASELINE_MODEL_KEY][0]
            blessing.set_string_custom_property(
                constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
            blessing.set_int_custom_property(
                constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
        if "current_component_id" in exec_properties:
            blessing.set_string_custom_property("component_id",
                                                exec_properties["current_component_id"])
        blessed = tfma.load_validation_result(output_uri).validation_ok
        io_utils.write_string_file(os.path.join(blessing.uri, (
            constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME)), "")
        blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSED_KEY,
            constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)


class Evaluator(TfxEvaluator):
    """TFX's Evaluator (same inputs, outputs, eval config and id) on the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
