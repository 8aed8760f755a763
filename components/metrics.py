"""TFMA metrics the built-ins lack, computed from TFMA's native combiners (no Keras in the loop)."""

import math

from tensorflow_model_analysis.metrics import mean_regression_error, metric_types, metric_util

RMSE_NAME = "root_mean_squared_error"


def _rmse_computations(name=None, eval_config=None, model_name="", output_name="",
                       example_weighted=False, sub_key=None, aggregation_type=None,
                       class_weights=None, preprocessors=None):
    mse = mean_regression_error.MeanSquaredError(name=f"_mse_for_{name}").computations(
        eval_config=eval_config, model_names=[model_name], output_names=[output_name],
        example_weighted=example_weighted)
    mse_key = mse[-1].keys[-1]
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)

    def result(metrics):
        return {key: math.sqrt(metrics[mse_key])}

    return mse + [metric_types.DerivedMetricComputation(keys=[key], result=result)]


class RootMeanSquaredError(metric_types.Metric):
    """sqrt(mean squared error), the rating metric MovieLens results are reported in."""

    def __init__(self, name: str = RMSE_NAME):
        super().__init__(metric_util.merge_per_key_computations(_rmse_computations), name=name)


metric_types.register_metric(RootMeanSquaredError)
