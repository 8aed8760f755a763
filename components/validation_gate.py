"""Stops the run when ExampleValidator found anomalies, before anything is transformed or trained.

ExampleValidator only records anomalies; this component turns them into a failed run.
"""

from tfx import v1 as tfx

from components.anomalies import check_anomalies


@tfx.dsl.components.component
def ValidationGate(  # noqa: N802 - TFX component names are classes
        anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies]
) -> None:
    check_anomalies(anomalies.uri, anomalies.split_names)
