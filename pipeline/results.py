"""Reads what the latest run produced from ML Metadata: metrics, blessing, pushed version."""

import contextlib
import dataclasses
import json
import os
import sqlite3
from typing import Dict, List, Optional, Set

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.evaluator.metrics import MAE_NAME, RMSE_NAME
from components.release_gate.component import METRICS_FILE
from pipeline.config import PipelineConfig
from pipeline.pipeline import EXAMPLE_GEN_ID, RELEASE_GATE_ID

COUNT_NAME = "example_count"
REPORTED = (RMSE_NAME, MAE_NAME, COUNT_NAME)
_DIFF = "_diff"


@dataclasses.dataclass
class RunResult:
    metrics: Dict[str, float]  # candidate, overall slice
    baseline_metrics: Dict[str, float]  # the previous blessed model, empty on a first run
    ranking: Dict[str, float]  # candidate's top-k metrics on the eval split
    baseline_ranking: Dict[str, float]
    slices: Dict[str, Dict[str, float]]  # "feature=value" → candidate metrics
    baseline_slices: Dict[str, Dict[str, float]]  # the same of the previous blessed model
    blessed: bool
    pushed_dir: Optional[str]
    gate_failures: List[str]


def latest_artifact(store, type_name: str, producer: str = ""):
    """The newest artifact of a type (of one component's, when producer is given)."""
    artifacts = [a for a in store.get_artifacts_by_type(type_name)
                 if not producer or f"{os.sep}{producer}{os.sep}" in a.uri]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def _slice_name(slice_key) -> str:
    return ", ".join(f"{k}={v}" for k, v in slice_key) or "overall"


def _metric_values(metrics) -> Dict[str, float]:
    values = metrics.get("", {}).get("", {})
    return {name: value["doubleValue"] for name, value in values.items() if "doubleValue" in value}


def gate_failures(config: PipelineConfig, metrics, baseline) -> List[str]:
    """Which release-gate threshold the candidate missed, and by how much."""
    gate, rmse = config.evaluation, metrics.get(RMSE_NAME)
    failures = []
    if rmse is not None and rmse > gate.max_rmse:
        failures.append(f"RMSE {rmse:.4f} is above the absolute threshold {gate.max_rmse:.4f} "
                        f"by {rmse - gate.max_rmse:.4f}")
    if rmse is not None and baseline.get(RMSE_NAME) is not None:
        limit = baseline[RMSE_NAME] + gate.max_rmse_increase
        if rmse > limit:
            failures.append(f"RMSE {rmse:.4f} regresses past the blessed model's "
                            f"{baseline[RMSE_NAME]:.4f} + {gate.max_rmse_increase} "
                            f"by {rmse - limit:.4f}")
    return failures


class MetadataDamagedError(RuntimeError):
    """The output folder's ML Metadata database cannot be read."""


def check_metadata(config: PipelineConfig) -> None:
    """SQLite's own check of the metadata database, before anything reads or writes it: a
    damaged one is named with what to do, not met as a query error deep in TFX."""
    path = config.metadata_path
    if "://" in path or not os.path.exists(path):
        return
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        verdict = str(error)
    if verdict != "ok":
        raise MetadataDamagedError(
            f"{path} is damaged ({verdict}). It holds the run history, the cache and which "
            "model is in service: restore it from a backup, or move it aside to start anew "
            "(the next run then trains from scratch, gated by the absolute thresholds only; "
            "serving/ and the data are kept)")


def open_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    check_metadata(config)
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    return metadata_store.MetadataStore(connection)


def ingested_spans(config: PipelineConfig) -> Set[int]:
    """Spans ExampleGen has written live examples for (none before the first run; a span
    whose examples were set aside as damaged is not one)."""
    if not os.path.exists(config.metadata_path):
        return set()
    from pipeline.validated_spans import span_of

    return {span_of(a) for a in open_store(config).get_artifacts_by_type("Examples")
            if f"{os.sep}{EXAMPLE_GEN_ID}{os.sep}" in a.uri and span_of(a) is not None
            and a.state == metadata_store_pb2.Artifact.LIVE}


def _baseline(metrics: Dict[str, float]) -> Dict[str, float]:
    """The baseline's values, from TFMA's candidate values and their differences."""
    return {name: metrics[name] - metrics[name + _DIFF]
            for name in REPORTED if name + _DIFF in metrics}


def latest_run_result(config: PipelineConfig) -> RunResult:
    import tensorflow_model_analysis as tfma

    store = open_store(config)
    evaluation = latest_artifact(store, "ModelEvaluation")
    result = tfma.load_eval_result(evaluation.uri)
    slices = {_slice_name(key): _metric_values(m) for key, m in result.slicing_metrics}
    overall = slices.get("overall", {})
    metrics = {name: overall[name] for name in REPORTED if name in overall}
    baseline = _baseline(overall)
    rating_blessed = bool(latest_artifact(store, "ModelBlessing", "Evaluator")
                          .custom_properties["blessed"].int_value)
    blessing = latest_artifact(store, "ModelBlessing", RELEASE_GATE_ID)
    blessed = bool(blessing.custom_properties["blessed"].int_value)
    with open(os.path.join(blessing.uri, METRICS_FILE)) as handle:
        ranking = json.load(handle)
    failures = [] if rating_blessed else gate_failures(config, metrics, baseline)
    failures += [f for f in ranking["failures"] if not f.startswith("the Evaluator")]
    pushed = latest_artifact(store, "PushedModel")
    pushed_dir = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        pushed_dir = pushed.custom_properties["pushed_destination"].string_value
    return RunResult(metrics=metrics, baseline_metrics=baseline, blessed=blessed,
                     ranking=ranking["candidate"], baseline_ranking=ranking["baseline"] or {},
                     slices={k: {n: v[n] for n in REPORTED if n in v} for k, v in slices.items()},
                     baseline_slices={k: _baseline(v) for k, v in slices.items()},
                     pushed_dir=pushed_dir if pushed_dir and os.path.isdir(pushed_dir) else None,
                     gate_failures=failures)
