"""Stops the run when the new examples broke the schema or drifted from the previous span's,
before anything is transformed or trained.

ExampleValidator only records schema anomalies; this component turns them into a failed run,
and compares the new statistics with the previous run's through the schema's drift
comparators (TFX's ExampleValidator takes no previous statistics).
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

from components.validation_gate.anomalies import check_anomalies, check_drift


@component
def ValidationGate(  # noqa: N802 - TFX component names are classes
        anomalies: InputArtifact[ExampleAnomalies],
        statistics: InputArtifact[ExampleStatistics] = None,
        previous_statistics: InputArtifact[ExampleStatistics] = None,
        schema: InputArtifact[Schema] = None,
) -> None:
    check_anomalies(anomalies.uri, anomalies.split_names)
    if statistics is not None and previous_statistics is not None and schema is not None:
        check_drift(statistics.uri, previous_statistics.uri, schema.uri)
