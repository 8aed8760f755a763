"""RMSE and MAE as TFMA metrics: the classes the eval config names.

The Evaluator's executor (components/evaluator/executor.py) computes the same values a batch at a
time; these classes are what TFMA itself computes for the config (`tfma.run_model_analysis`,
TFX's own Evaluator executor, which the tests compare it with), and what TFMA resolves the
thresholds' metric keys from.

TFMA's MeanAbsoluteError and MeanSquaredError each run a generic label/prediction lookup per
example and slice (~25 µs); here both metrics derive from one combiner of error sums whose
lookup is the one our serving contract needs (the model's `prediction_key` output, a single
rating per example). TFMA de-duplicates computations by key, so the sums are computed once.
"""

import dataclasses
import math
from typing import Mapping

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.utils import model_util

RMSE_NAME = "root_mean_squared_error"
MAE_NAME = "mean_absolute_error"
_SUMS_NAME = "_rating_error_sums"


@dataclasses.dataclass
class ErrorSums:
    count: float = 0.0
    absolute: float = 0.0
    squared: float = 0.0

    def mean(self, metric_name: str) -> float:
        """RMSE_NAME or MAE_NAME of these sums; NaN over no ratings."""
        if not self.count:
            return float("nan")
        if metric_name == RMSE_NAME:
            return math.sqrt(self.squared / self.count)
        return self.absolute / self.count


class _ErrorSumsCombiner(beam.CombineFn):
    """Σ 1, Σ |prediction − label| and Σ (prediction − label)² of one model's ratings."""

    def __init__(self, key: metric_types.MetricKey, spec):
        """spec: the model's ModelSpec (None: no label or prediction key to look up)."""
        self._key = key
        self._label_keys = [k for k in (key.model_name, spec and spec.label_key) if k]
        self._prediction_keys = [k for k in (key.model_name, spec and spec.prediction_key) if k]

    def _value(self, value, keys, name: str) -> float:
        """The value under each key in turn where the value is a dict (model name, then the
        spec's key): one rating, TFMA having unbatched the examples."""
        for key in keys:
            if isinstance(value, Mapping) and key in value:
                value = value[key]
        try:
            return float(value.item() if isinstance(value, np.ndarray) else value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} of model {self._key.model_name!r} is not one rating per "
                             f"example (looked up {keys}): {value!r}") from None

    def create_accumulator(self) -> ErrorSums:
        return ErrorSums()

    def add_input(self, sums: ErrorSums, element: metric_types.StandardMetricInputs
                  ) -> ErrorSums:
        error = (self._value(element.prediction, self._prediction_keys, "prediction")
                 - self._value(element.label, self._label_keys, "label"))
        if not math.isnan(error):
            sums.count += 1
            sums.absolute += abs(error)
            sums.squared += error * error
        return sums

    def merge_accumulators(self, accumulators) -> ErrorSums:
        merged = ErrorSums()
        for sums in accumulators:
            merged.count += sums.count
            merged.absolute += sums.absolute
            merged.squared += sums.squared
        return merged

    def extract_output(self, sums: ErrorSums):
        return {self._key: sums}


def _computations(metric_name: str):
    """The shared sums (de-duplicated across metrics by their key) and metric_name from them."""

    def computations(name=None, eval_config=None, model_name="", output_name="",
                     example_weighted=False, sub_key=None, aggregation_type=None,
                     class_weights=None, preprocessors=None):
        if example_weighted:
            raise ValueError(f"{metric_name} is computed unweighted (examples carry no "
                             "weights)")
        sums_key = metric_types.MetricKey(name=_SUMS_NAME, model_name=model_name,
                                          output_name=output_name, sub_key=sub_key)
        key = metric_types.MetricKey(name=name, model_name=model_name,
                                     output_name=output_name, sub_key=sub_key)
        sums = metric_types.MetricComputation(
            keys=[sums_key], preprocessors=None, combiner=_ErrorSumsCombiner(
                sums_key, eval_config and model_util.get_model_spec(eval_config, model_name)))

        def result(metrics):
            return {key: metrics[sums_key].mean(metric_name)}

        return [sums, metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return computations


class RootMeanSquaredError(metric_types.Metric):
    """sqrt(mean squared error), the rating metric MovieLens results are reported in."""

    def __init__(self, name: str = RMSE_NAME):
        super().__init__(metric_util.merge_per_key_computations(_computations(
            RMSE_NAME)), name=name)


class MeanAbsoluteRatingError(metric_types.Metric):
    """mean |prediction − rating| (named apart from TFMA's MeanAbsoluteError, which a class
    name in the config would resolve to)."""

    def __init__(self, name: str = MAE_NAME):
        super().__init__(metric_util.merge_per_key_computations(_computations(
            MAE_NAME)), name=name)


metric_types.register_metric(RootMeanSquaredError)
metric_types.register_metric(MeanAbsoluteRatingError)
