"""The Evaluator's RMSE and MAE (components/evaluator/metrics.py) through TFMA's own metric
resolution, against numpy on the same ratings."""

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs, metric_types
from tensorflow_model_analysis.utils import config_util

from pipeline.config import EvaluationConfig
from pipeline.pipeline import eval_config

RNG = np.random.default_rng(7)
LABELS = RNG.integers(1, 6, 50).astype(np.float32)
CANDIDATE = LABELS + RNG.normal(0, 0.9, 50).astype(np.float32)
BASELINE = np.full(50, 3.5, np.float32)


def _computations(has_baseline=False):
    """As the Evaluator resolves them: our config completed with TFMA's defaults (with a
    baseline: models named candidate and baseline)."""
    config = config_util.update_eval_config_with_defaults(
        eval_config(EvaluationConfig()), has_baseline=has_baseline, rubber_stamp=not has_baseline)
    return metric_specs.to_computations(list(config.metrics_specs), eval_config=config)


def _metrics(inputs, has_baseline=False):
    """Every computation's combiner over the inputs, then the derived metrics, by key."""
    metrics = {}
    computations = _computations(has_baseline)
    for computation in computations:
        if isinstance(computation, metric_types.MetricComputation):
            combiner = computation.combiner
            accumulators = [combiner.create_accumulator(), combiner.create_accumulator()]
            for index, element in enumerate(inputs):  # two accumulators, merged, as Beam may
                accumulators[index % 2] = combiner.add_input(accumulators[index % 2], element)
            metrics.update(combiner.extract_output(combiner.merge_accumulators(accumulators)))
    for computation in computations:
        if isinstance(computation, metric_types.DerivedMetricComputation):
            metrics.update(computation.result(metrics))
    return {(key.name, key.model_name): value for key, value in metrics.items()}


def _inputs(predictions_of):
    return [metric_types.StandardMetricInputs({
        tfma.LABELS_KEY: np.array([LABELS[i]]),
        tfma.PREDICTIONS_KEY: predictions_of(i),
        tfma.EXAMPLE_WEIGHTS_KEY: None}) for i in range(len(LABELS))]


def _rmse_mae(predictions):
    errors = predictions.astype(np.float64) - LABELS
    return np.sqrt(np.mean(errors ** 2)), np.mean(np.abs(errors))


def test_rmse_and_mae_of_the_serving_output_match_numpy():
    metrics = _metrics(_inputs(
        lambda i: {"rating": np.array([CANDIDATE[i]]), "other": np.array([0.0])}))
    rmse, mae = _rmse_mae(CANDIDATE)
    assert metrics[("root_mean_squared_error", "")] == pytest.approx(rmse, rel=1e-6)
    assert metrics[("mean_absolute_error", "")] == pytest.approx(mae, rel=1e-6)


def test_both_metrics_share_one_pass_of_error_sums():
    computations = _computations()
    sums = [c for c in computations if isinstance(c, metric_types.MetricComputation)
            and c.keys[0].name.startswith("_rating_error")]
    assert len({c.keys[0] for c in sums}) == 1  # TFMA runs computations once per key


def test_candidate_and_baseline_each_read_their_own_predictions():
    metrics = _metrics(_inputs(lambda i: {
        tfma.CANDIDATE_KEY: {"rating": np.array([CANDIDATE[i]])},
        tfma.BASELINE_KEY: {"rating": np.array([BASELINE[i]])}}), has_baseline=True)
    for name, predictions in ((tfma.CANDIDATE_KEY, CANDIDATE), (tfma.BASELINE_KEY, BASELINE)):
        rmse, mae = _rmse_mae(predictions)
        assert metrics[("root_mean_squared_error", name)] == pytest.approx(rmse, rel=1e-6)
        assert metrics[("mean_absolute_error", name)] == pytest.approx(mae, rel=1e-6)


def test_a_prediction_that_is_not_one_rating_is_refused():
    [inputs] = _inputs(lambda i: {"rating": np.array([1.0, 2.0])})[:1]
    sums = next(c for c in _computations()
                if isinstance(c, metric_types.MetricComputation)
                and c.keys[0].name.startswith("_rating_error"))
    with pytest.raises(ValueError, match="not one rating per example"):
        sums.combiner.add_input(sums.combiner.create_accumulator(), inputs)

