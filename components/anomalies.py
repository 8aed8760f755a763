"""Turns ExampleValidator's anomalies into one error naming each feature and its problem.

Kept free of TFX imports so the CLI can catch DataAnomaliesError without loading TFX.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

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


def check_anomalies(uri: str, split_names: str) -> None:
    """Raises DataAnomaliesError listing every anomaly of every split of an ExampleAnomalies
    artifact (its uri and its JSON `split_names` property)."""
    found = []
    for split in json.loads(split_names):
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(os.path.join(uri, f"Split-{split}", ANOMALIES_FILE), "rb") as f:
            anomalies.ParseFromString(f.read())
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            found.append(describe_anomalies(split, anomalies))
    if found:
        raise DataAnomaliesError("data does not match schemas/schema.pbtxt: " + " | ".join(found))
