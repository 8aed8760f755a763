"""Turns ExampleValidator's anomalies into one error naming each feature and its problem.

Kept free of TFX imports so the CLI can catch DataAnomaliesError without loading TFX.
"""

import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

ANOMALIES_FILE = "SchemaDiff.pb"
STATISTICS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"
DRIFT_SPLIT = "train"


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


def check_drift(statistics_uri: str, previous_uri: str, schema_uri: str) -> None:
    """Raises DataAnomaliesError when the new train split drifted from the previous one past
    the schema's drift comparators (L-infinity, Jensen-Shannon), naming each feature."""
    import tensorflow_data_validation as tfdv

    def load(uri):
        return tfdv.load_stats_binary(os.path.join(uri, f"Split-{DRIFT_SPLIT}", STATISTICS_FILE))

    anomalies = tfdv.validate_statistics(
        load(statistics_uri), tfdv.load_schema_text(os.path.join(schema_uri, SCHEMA_FILE)),
        previous_statistics=load(previous_uri))
    drifted = [f"feature '{name}': {reason.description}"
               for name, info in sorted(anomalies.anomaly_info.items())
               for reason in info.reason
               if anomalies_pb2.AnomalyInfo.Type.Name(reason.type).startswith("COMPARATOR_")]
    if drifted:
        raise DataAnomaliesError(
            "the new span drifted from the previous run's past the thresholds in "
            "schemas/schema.pbtxt: " + "; ".join(drifted) + ". If the change is real, raise "
            "those thresholds and run again")
