"""A resolver strategy: the latest spans of a channel, leaving out spans the validation gate
stopped. Used for the training window and for the statistics the drift check compares with.

A stopped span (drift or schema anomalies) stays in ML Metadata: without this, the next span's
drift would be measured against the stopped one (and stopped in turn), and the window would
train on it once a later span passed. A span is stopped when the ValidationGate checked its
statistics and never passed them; a run that passes it later (thresholds raised) admits it.
"""

from typing import Dict, Iterable, List, Optional, Set

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver

GATE_TYPE_SUFFIX = "ValidationGate"
GATE_STATISTICS_INPUT = "statistics"
_PASSED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
_INPUT, _OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


def span_of(artifact: metadata_store_pb2.Artifact) -> Optional[int]:
    """ExampleGen's span: a custom property of its Examples (the type property is unset)."""
    if "span" in artifact.custom_properties:
        return artifact.custom_properties["span"].int_value
    return None


def spans_of(store, artifact_ids: Iterable[int]) -> Dict[int, int]:
    """Each artifact's span: its own, or that of the Examples its producer read (statistics
    carry a span property, but StatisticsGen copies the unset type property: always 0)."""
    artifact_ids = list(artifact_ids)
    found = {a.id: span_of(a) for a in store.get_artifacts_by_id(artifact_ids)}
    unknown = [i for i, span in found.items() if span is None]
    # Every execution that output the artifact: Airflow's legacy resolvers record what they
    # resolve as outputs too (they read no Examples, so add nothing).
    producers: Dict[int, Set[int]] = {}
    for event in store.get_events_by_artifact_ids(unknown):
        if event.type == _OUTPUT:
            producers.setdefault(event.artifact_id, set()).add(event.execution_id)
    executions = set().union(*producers.values()) if producers else set()
    read = [e for e in store.get_events_by_execution_ids(list(executions)) if e.type == _INPUT]
    examples = {a.id: span_of(a) for a in store.get_artifacts_by_id(
        list({e.artifact_id for e in read}))}
    for artifact_id, outputs_of in producers.items():
        spans = [examples[e.artifact_id] for e in read if e.execution_id in outputs_of
                 and examples.get(e.artifact_id) is not None]
        found[artifact_id] = max(spans) if spans else None
    return {i: span for i, span in found.items() if span is not None}


def stopped_spans(store) -> Set[int]:
    """Spans whose statistics the ValidationGate checked and never passed."""
    gate_types = {t.id for t in store.get_execution_types() if t.name.endswith(GATE_TYPE_SUFFIX)}
    gates = {e.id: e for e in store.get_executions() if e.type_id in gate_types}
    if not gates:
        return set()
    checks = [e for e in store.get_events_by_execution_ids(list(gates))
              if e.type == _INPUT and e.path.steps and e.path.steps[0].key == GATE_STATISTICS_INPUT]
    spans = spans_of(store, {e.artifact_id for e in checks})
    passed: Dict[int, bool] = {}
    for check in checks:
        if check.artifact_id in spans:
            span = spans[check.artifact_id]
            passed[span] = (passed.get(span, False)
                            or gates[check.execution_id].last_known_state in _PASSED)
    return {span for span, ever in passed.items() if not ever}


class ValidatedSpansStrategy(resolver.ResolverStrategy):
    """The latest `num_spans` spans (the newest artifact of each) the gate did not stop."""

    def __init__(self, num_spans: int):
        self._num_spans = num_spans

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        stopped = stopped_spans(store)
        resolved = {}
        for key, artifacts in input_dict.items():
            spans = spans_of(store, [a.id for a in artifacts])
            newest: Dict[int, types.Artifact] = {}
            for artifact in artifacts:
                span = spans.get(artifact.id)
                if span is not None and span not in stopped and (
                        span not in newest or artifact.id > newest[span].id):
                    newest[span] = artifact
            resolved[key] = [newest[span] for span in sorted(newest)[-self._num_spans:]]
        return resolved
