"""What a run report shows, read from the artifacts ML Metadata holds for the output folder: the
data (StatisticsGen, ExampleValidator), the evaluation (Evaluator, release gate), the training
(the Trainer's record, the run's times and peak memory), the model (the gate's profile of its
top 10s) and every run so far. Plain JSON, saved beside the page (facts.json)."""

import copy
import json
import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from components.release_gate.component import METRICS_FILE
from components.training.trainer import TRAINING_FILE
from components.validation_gate.anomalies import ANOMALIES_FILE, SCHEMA_FILE, STATISTICS_FILE
from pipeline.config import PipelineConfig
from pipeline.pipeline import RELEASE_GATE_ID
from pipeline.results import latest_artifact, latest_run_result

TOP_VALUES = 10
# Drift is measured for every feature; those the schema sets no comparator for are measured
# with this threshold, which no distance reaches (L-infinity and Jensen-Shannon are ≤ 1).
UNGATED = 2.0
STANDARD = statistics_pb2.Histogram.STANDARD


def _feature(stats: statistics_pb2.FeatureNameStatistics) -> Dict[str, object]:
    name = ".".join(stats.path.step) or stats.name
    if stats.HasField("num_stats"):
        numeric = stats.num_stats
        histogram = next((h for h in numeric.histograms if h.type == STANDARD), None)
        return {"name": name, "kind": "numeric",
                "count": numeric.common_stats.num_non_missing,
                "missing": numeric.common_stats.num_missing, "mean": numeric.mean,
                "std": numeric.std_dev, "min": numeric.min, "max": numeric.max,
                "histogram": [[b.low_value, b.high_value, b.sample_count]
                              for b in (histogram.buckets if histogram else [])]}
    strings = stats.string_stats
    return {"name": name, "kind": "categorical", "count": strings.common_stats.num_non_missing,
            "missing": strings.common_stats.num_missing, "unique": strings.unique,
            "top_values": [[v.value, v.frequency] for v in strings.top_values[:TOP_VALUES]]}


def _statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(os.path.join(uri, f"Split-{split}", STATISTICS_FILE))


def _splits(artifact) -> List[str]:
    return json.loads(artifact.properties["split_names"].string_value)


def _drift(current, previous, schema_uri: str) -> List[Dict[str, object]]:
    """Each feature's distance from the previous statistics: the schema's comparator where it
    sets one (threshold given), else L-infinity (categorical) or Jensen-Shannon (numeric)."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(os.path.join(schema_uri, SCHEMA_FILE))
    gated = {f.name: f.HasField("drift_comparator") for f in schema.feature}
    measured = copy.deepcopy(schema)
    for feature in measured.feature:
        if not gated[feature.name]:
            if feature.type == schema_pb2.BYTES:
                feature.drift_comparator.infinity_norm.threshold = UNGATED
            else:
                feature.drift_comparator.jensen_shannon_divergence.threshold = UNGATED
    anomalies = tfdv.validate_statistics(current, measured, previous_statistics=previous)
    rows = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for measurement in info.drift_measurements:
            threshold = measurement.threshold if gated.get(name) else None
            rows.append({"feature": name, "measure": anomalies_pb2.DriftSkewInfo
                         .Measurement.Type.Name(measurement.type).lower(),
                         "value": measurement.value, "threshold": threshold,
                         "fired": threshold is not None and measurement.value > threshold})
    return sorted(rows, key=lambda row: row["feature"])


def _anomalies(store) -> List[Dict[str, str]]:
    """Every anomaly ExampleValidator found in the latest statistics, with the rule that
    fired (TFDV's anomaly type)."""
    artifact = latest_artifact(store, "ExampleAnomalies")
    if artifact is None:
        return []
    found = []
    for split in _splits(artifact):
        anomalies = anomalies_pb2.Anomalies()
        with open(os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE), "rb") as f:
            anomalies.ParseFromString(f.read())
        for name, info in sorted(anomalies.anomaly_info.items()):
            for reason in info.reason:
                found.append({"split": split, "feature": name,
                              "rule": anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                              "description": reason.description or reason.short_description})
    return found


def _previous_statistics(store, current, spanned: bool):
    """What the drift is measured against, and its label: the latest statistics of another
    span the validation gate did not stop (spanned data, as the gate does), else the
    statistics of the run before."""
    from pipeline.validated_spans import spans_of, stopped_spans

    older = [a for a in store.get_artifacts_by_type("ExampleStatistics")
             if a.id < current.id and f"{os.sep}StatisticsGen{os.sep}" in a.uri]
    if not spanned:
        return (max(older, key=lambda a: a.id), "the previous run's data") if older else None
    spans = spans_of(store, [current.id] + [a.id for a in older])
    stopped = stopped_spans(store)
    candidates = [a for a in older if spans.get(a.id) not in (None, spans.get(current.id))
                  and spans[a.id] not in stopped]
    if not candidates:
        return None
    previous = max(candidates, key=lambda a: a.id)
    return previous, f"span {spans[previous.id]}"


def data_facts(store, spanned: bool) -> Dict[str, object]:
    statistics = latest_artifact(store, "ExampleStatistics", "StatisticsGen")
    if statistics is None:
        return {}
    loaded = {split: _statistics(statistics.uri, split) for split in _splits(statistics)}
    splits = {split: {"examples": stats.datasets[0].num_examples,
                      "features": [_feature(f) for f in stats.datasets[0].features]}
              for split, stats in loaded.items()}
    facts = {"splits": splits, "anomalies": _anomalies(store), "drift": None}
    previous = _previous_statistics(store, statistics, spanned)
    schema = latest_artifact(store, "Schema")
    split = "train"
    if previous is not None and schema is not None and split in loaded:
        facts["drift"] = {"against": previous[1], "split": split, "features": _drift(
            loaded[split], _statistics(previous[0].uri, split), schema.uri)}
    return facts


def gate_record(store) -> Dict[str, object]:
    """The release gate's record of its latest decision (ranking_metrics.json): what the
    evaluation and model sections both read."""
    blessing = latest_artifact(store, "ModelBlessing", RELEASE_GATE_ID)
    with open(os.path.join(blessing.uri, METRICS_FILE)) as handle:
        return json.load(handle)


def evaluation_facts(config: PipelineConfig, gate: Dict[str, object]) -> Dict[str, object]:
    result = latest_run_result(config)
    thresholds = config.evaluation
    return {
        "blessed": result.blessed, "failures": result.gate_failures,
        "pushed_dir": result.pushed_dir,
        "rating": {"candidate": result.metrics, "baseline": result.baseline_metrics,
                   "slices": result.slices, "baseline_slices": result.baseline_slices},
        "ranking": {"candidate": gate["candidate"], "baseline": gate["baseline"],
                    "slices": (gate.get("candidate_profile") or {}).get("slices", {}),
                    "baseline_slices": (gate.get("baseline_profile") or {}).get("slices", {})},
        "thresholds": {"max_rmse": thresholds.max_rmse,
                       "max_rmse_increase": thresholds.max_rmse_increase,
                       "ranking_metric": thresholds.ranking_metric,
                       "min_ranking": thresholds.min_ranking,
                       "max_ranking_drop": thresholds.max_ranking_drop}}


def training_facts(store, seconds: Dict[str, float], peak_mb: Dict[str, float]
                   ) -> Dict[str, object]:
    """The Trainer's record of the towers' epochs (gate fit and refit), and each component's
    wall time and peak memory in this run."""
    model_run = latest_artifact(store, "ModelRun")
    record = {}
    path = os.path.join(model_run.uri, TRAINING_FILE) if model_run is not None else ""
    if os.path.exists(path):
        with open(path) as handle:
            record = json.load(handle)
    fits = {name: {"epoch_losses": fit.get("epoch_losses", {}),
                   "epoch_seconds": fit.get("epoch_seconds", []), "examples": fit["examples"]}
            for name, fit in (("gate", record), ("refit", record.get("refit"))) if fit}
    return {"fits": fits, "phase_seconds": record.get("phase_seconds", {}),
            "components": [{"name": name, "seconds": value, "peak_mb": peak_mb.get(name)}
                           for name, value in seconds.items()]}


# The context types of a pipeline run and of a component in it: TFX's launcher's, and the
# legacy launcher's that Airflow's TFX runner uses.
_RUN_CONTEXTS, _NODE_CONTEXTS = ("pipeline_run", "run"), ("node", "component_run")


def metadata_seconds(store) -> Dict[str, float]:
    """Each component's seconds in the latest pipeline run, as ML Metadata timed its execution:
    for an orchestrator that runs the components elsewhere (Airflow)."""
    types = {t.name: t.id for t in store.get_context_types()}
    runs = [c for name in _RUN_CONTEXTS if name in types for c in store.get_contexts_by_type(name)]
    if not runs:
        return {}
    nodes = {types[name] for name in _NODE_CONTEXTS if name in types}
    executions = sorted(store.get_executions_by_context(max(runs, key=lambda c: c.id).id),
                        key=lambda e: e.create_time_since_epoch)
    seconds = {}
    for execution in executions:
        for context in store.get_contexts_by_execution(execution.id):
            if context.type_id in nodes:
                seconds[context.name.rsplit(".", 1)[-1]] = (
                    execution.last_update_time_since_epoch
                    - execution.create_time_since_epoch) / 1000
    return seconds


def model_facts(gate: Dict[str, object], titles: Dict[str, str]) -> Dict[str, object]:
    """The gate's profile of the candidate's top 10s (and of the model in service's)."""
    candidate = gate.get("candidate_profile") or {}
    examples = [{**example, "items": [{**item, "title": titles.get(item["item_id"], "?")}
                                      for item in example["items"]]}
                for example in candidate.get("examples", [])]
    return {"top_k": candidate.get("top_k"),
            "baseline_top_k": (gate.get("baseline_profile") or {}).get("top_k"),
            "examples": examples}


def history_facts(config: PipelineConfig) -> Dict[str, object]:
    """Every release decision in the metadata (oldest first) and every rollback: a serving
    version no run pushed (a copy of an earlier version, found by its fingerprint). Versions
    are seconds since the epoch (Pusher's, and a rollback's: pipeline/history.py), so a
    rollback's version places it among the runs."""
    from components.pusher.versions import fingerprint
    from pipeline.history import run_history, serving_versions

    records = run_history(config)
    pushed = {r.pushed_version for r in records if r.pushed_version}
    versions = serving_versions(config)
    digests = {v: fingerprint(os.path.join(config.serving_dir, v)) for v in versions}
    rollbacks = []
    for version in versions:
        if version in pushed:
            continue
        earlier = [v for v in versions if int(v) < int(version) and v in pushed
                   and digests[v] is not None and digests[v] == digests[version]]
        rollbacks.append({"version": version, "copy_of": earlier[0] if earlier else None,
                          "time": float(version)})
    return {"runs": [{"finished": r.finished, "spans": r.spans,
                      "metrics": {"rmse": r.rmse, "mae": r.mae, **r.ranking},
                      "blessed": r.blessed, "revoked": r.revoked,
                      "failures": r.failures, "pushed_version": r.pushed_version,
                      "finished_time": r.finished_time}
                     for r in records],
            "rollbacks": rollbacks, "serving": versions[-1] if versions else None}
