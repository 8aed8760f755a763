"""Stops the run when ExampleValidator found anomalies, before anything is transformed or trained.

ExampleValidator only records anomalies; this component turns them into a failed run whose
message names each feature and its problem.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The examples of a split broke the curated schema."""


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> str:
    problems = [
        f"feature '{name}': {info.short_description or info.description}"
        + (f" ({info.description})" if info.short_description and info.description else "")
        for name, info in sorted(anomalies.anomaly_info.items())
    ]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        problems.append(f"dataset: {info.short_description or info.description}")
    return f"split '{split}': " + "; ".join(problems)


def check_anomalies(artifact) -> None:
    """Raises DataAnomaliesError listing every anomaly of every split of the artifact."""
    found = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            found.append(describe_anomalies(split, anomalies))
    if found:
        raise DataAnomaliesError("data does not match schemas/schema.pbtxt: " + " | ".join(found))


@tfx.dsl.components.component
def ValidationGate(  # noqa: N802 - TFX component names are classes
        anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies]
) -> None:
    check_anomalies(anomalies)
