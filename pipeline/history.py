"""`recsys history` and `recsys rollback`: every run's model as ML Metadata recorded it, and
making an earlier pushed model the one served.

History is read from the metadata store, not from a log of our own, so it holds for any
orchestrator that shares the store. One row per release-gate decision: the spans the model was
trained on (Transform's inputs), its RMSE (Evaluator) and ranking metric (release gate), the
blessing and the version Pusher wrote.

A rollback copies the chosen version into a new, highest version folder (written aside, then
renamed: TF Serving and `recsys recommend` serve the highest version) and revokes the release
blessing of every model pushed after it, so the next run's baseline — the latest blessed
model — is the model now in service.
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional, Tuple

from ml_metadata.proto import metadata_store_pb2

from components.pusher.versions import numbered_versions, publish
from pipeline.config import PipelineConfig
from pipeline.pipeline import EXAMPLE_GEN_ID
from pipeline.validated_spans import span_of

_INPUT, _OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT
REVOKED = "revoked_by_rollback"


class RollbackError(RuntimeError):
    """The requested version cannot be served."""


@dataclasses.dataclass
class RunRecord:
    finished: str
    finished_time: float  # seconds since the epoch
    model_id: int
    spans: List[int]
    rmse: Optional[float]
    mae: Optional[float]
    ranking: Dict[str, float]
    blessed: bool
    revoked: bool
    failures: List[str]
    pushed_version: Optional[str]


class _Graph:
    """Executions and artifacts of one store, joined through their events."""

    def __init__(self, store):
        self.store = store
        types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
        self.executions = {e.id: e for e in store.get_executions()}
        self.kind = {e.id: types[e.type_id] for e in self.executions.values()}
        self.artifacts = {a.id: a for a in store.get_artifacts()}
        self.inputs: Dict[int, List[int]] = {}
        self.outputs: Dict[int, List[int]] = {}
        self.producer: Dict[int, int] = {}
        self.consumers: Dict[int, List[Tuple[int, str]]] = {}  # (execution, input key)
        for event in store.get_events_by_execution_ids(list(self.executions)):
            if event.type == _INPUT:
                key = event.path.steps[0].key if event.path.steps else ""
                self.inputs.setdefault(event.execution_id, []).append(event.artifact_id)
                self.consumers.setdefault(event.artifact_id, []).append(
                    (event.execution_id, key))
            elif event.type == _OUTPUT and self.kind[event.execution_id] != "Resolver":
                # (Airflow's legacy resolvers record what they resolve as their outputs.)
                self.outputs.setdefault(event.execution_id, []).append(event.artifact_id)
                self.producer[event.artifact_id] = event.execution_id

    def executions_of(self, kind: str):
        return sorted((e for e in self.executions.values() if self.kind[e.id] == kind),
                      key=lambda e: e.id)

    def consumer(self, artifact_id: int, kind: str, key: str = "model"):
        """The latest execution of `kind` that read the artifact as its input `key` (an
        Evaluator reads the model in service as its baseline_model too)."""
        found = [e for e, read_as in self.consumers.get(artifact_id, [])
                 if self.kind[e] == kind and read_as == key]
        return max(found) if found else None

    def spans(self, model_id: int) -> List[int]:
        trainer = self.producer.get(model_id)
        found = set()
        for transformed in self.inputs.get(trainer, []):
            transform = self.producer.get(transformed)
            if transform is None or self.kind[transform] != "Transform":
                continue
            spans = (span_of(self.artifacts[a]) for a in self.inputs.get(transform, []))
            found.update(span for span in spans if span is not None)
        return sorted(found)


def _rating_metrics(graph: _Graph, model_id: int) -> Dict[str, float]:
    """The Evaluator's overall values for the model: RMSE, MAE ({} if none evaluated it)."""
    import tensorflow_model_analysis as tfma

    evaluator = graph.consumer(model_id, "Evaluator")
    for artifact_id in graph.outputs.get(evaluator, []):
        artifact = graph.artifacts[artifact_id]
        if "/Evaluator/evaluation/" in artifact.uri:
            for key, metrics in tfma.load_eval_result(artifact.uri).slicing_metrics:
                if not key:
                    return {name: value["doubleValue"]
                            for name, value in metrics[""][""].items() if "doubleValue" in value}
    return {}


def _pushed_version(graph: _Graph, model_id: int) -> Optional[str]:
    pusher = graph.consumer(model_id, "Pusher")
    for artifact_id in graph.outputs.get(pusher, []):
        properties = graph.artifacts[artifact_id].custom_properties
        if "pushed" in properties and properties["pushed"].int_value:
            return properties["pushed_version"].string_value
    return None


def run_history(config: PipelineConfig) -> List[RunRecord]:
    """Every release-gate decision in the output folder's metadata, oldest first."""
    from components.evaluator.metrics import MAE_NAME, RMSE_NAME
    from components.release_gate.component import METRICS_FILE
    from pipeline.results import open_store

    if not os.path.exists(config.metadata_path):
        return []
    graph = _Graph(open_store(config))
    records = []
    for gate in graph.executions_of("RankingGate"):
        models = [a for a in graph.inputs.get(gate.id, []) if "/Trainer/model/" in
                  graph.artifacts[a].uri]
        blessings = [graph.artifacts[a] for a in graph.outputs.get(gate.id, [])]
        if not models or not blessings:
            continue
        # The candidate is the model named in the blessing (the baseline is an input too).
        blessing = blessings[0]
        model_id = blessing.custom_properties["current_model_id"].int_value
        with open(os.path.join(blessing.uri, METRICS_FILE)) as handle:
            ranking = json.load(handle)
        finished = gate.last_update_time_since_epoch / 1000
        rating = _rating_metrics(graph, model_id)
        records.append(RunRecord(
            finished=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(finished)),
            finished_time=finished,
            model_id=model_id, spans=graph.spans(model_id), rmse=rating.get(RMSE_NAME),
            mae=rating.get(MAE_NAME),
            ranking=ranking["candidate"],
            blessed=bool(blessing.custom_properties["blessed"].int_value),
            revoked=REVOKED in blessing.custom_properties, failures=ranking["failures"],
            pushed_version=_pushed_version(graph, model_id)))
    return records


@dataclasses.dataclass
class Interrupted:
    """A run that did not finish: killed (or crashed) in a component, or failed in one."""

    started: str
    started_time: float  # seconds since the epoch
    how: str  # "interrupted during Trainer", "interrupted after Transform", "failed in Pusher"


def _node_names(store) -> Dict[int, str]:
    """Each execution's pipeline node (Trainer, ReleaseGate, ...)."""
    nodes = {}
    for kind in ("node", "component_run"):
        for context in store.get_contexts_by_type(kind):
            for execution in store.get_executions_by_context(context.id):
                nodes[execution.id] = context.name.rsplit(".", 1)[-1]
    return nodes


def _unfinished(executions, nodes) -> Optional[str]:
    """How a run's executions say it ended, when it did not finish (None when it did)."""
    state = metadata_store_pb2.Execution
    for execution in executions:
        if execution.last_known_state in (state.NEW, state.RUNNING):
            return f"interrupted during {nodes.get(execution.id, '?')}"
    failed = [e for e in executions if e.last_known_state == state.FAILED]
    if failed:
        return f"failed in {nodes.get(failed[0].id, '?')}"
    names = [nodes.get(e.id) for e in executions]
    if set(names) <= {EXAMPLE_GEN_ID} or "Pusher" in names:
        return None  # a catch-up of one span (ExampleGen alone), or a run that finished
    return f"interrupted after {names[-1]}"


def interrupted_runs(config: PipelineConfig) -> List[Interrupted]:
    """The local runs ML Metadata holds that did not finish, while no run holds the output
    folder, oldest first: killed or crashed in (or between) components, or failed in one.
    Their reruns start those components anew."""
    from pipeline.lock import held
    from pipeline.results import open_store

    if not os.path.exists(config.metadata_path) or held(config.output_dir):
        return []
    store = open_store(config)
    nodes = _node_names(store)
    found = []
    for run in store.get_contexts_by_type("pipeline_run"):
        executions = sorted(store.get_executions_by_context(run.id),
                            key=lambda e: e.create_time_since_epoch)
        how = _unfinished(executions, nodes) if executions else None
        if how is not None:
            started = executions[0].create_time_since_epoch / 1000
            found.append(Interrupted(time.strftime("%Y-%m-%d %H:%M:%S",
                                                   time.localtime(started)), started, how))
    return sorted(found, key=lambda run: run.started_time)


def serving_versions(config: PipelineConfig) -> List[str]:
    return numbered_versions(config.serving_dir)


def rollback(config: PipelineConfig, version: Optional[str] = None) -> Tuple[str, str]:
    """Serves `version` (default: the one before the version in service) as a new highest
    version; returns (new version, version). The models pushed after it lose their blessing."""
    from pipeline.results import check_metadata

    check_metadata(config)  # before serving/ changes: the blessings must follow it
    versions = serving_versions(config)
    if not versions:
        raise RollbackError(f"nothing has been pushed to {config.serving_dir}")
    if version is None:
        if len(versions) < 2:
            raise RollbackError(f"only one version in {config.serving_dir}: nothing to roll "
                                "back to")
        version = versions[-2]
    if version not in versions:
        raise RollbackError(f"version {version} is not in {config.serving_dir}; pushed: "
                            f"{', '.join(versions)}")
    if version == versions[-1]:
        raise RollbackError(f"version {version} is already the one served")
    new_version = publish(os.path.join(config.serving_dir, version), config.serving_dir)
    _follow_blessings(config, version, new_version)
    return new_version, version


def _follow_blessings(config: PipelineConfig, version: str, new_version: str) -> None:
    """Models pushed after `version` lose their release blessing; its own model regains one
    an earlier rollback took. The latest blessed model is then the one in service."""
    from pipeline.results import open_store

    if not os.path.exists(config.metadata_path):
        return
    store = open_store(config)
    graph = _Graph(store)
    changed = []
    for gate in graph.executions_of("RankingGate"):
        for artifact_id in graph.outputs.get(gate.id, []):
            blessing = graph.artifacts[artifact_id]
            pushed = _pushed_version(graph, blessing.custom_properties["current_model_id"]
                                     .int_value)
            if pushed is None or not pushed.isdigit():
                continue
            if int(pushed) > int(version) and blessing.custom_properties["blessed"].int_value:
                blessing.custom_properties["blessed"].int_value = 0
                blessing.custom_properties[REVOKED].string_value = new_version
                changed.append(blessing)
            elif pushed == version and REVOKED in blessing.custom_properties:
                # Rolling forward to a model an earlier rollback revoked: it serves again.
                blessing.custom_properties["blessed"].int_value = 1
                del blessing.custom_properties[REVOKED]
                changed.append(blessing)
    if changed:
        store.put_artifacts(changed)
