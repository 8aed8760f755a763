"""Runs the pipeline in this process: LocalDagRunner, Beam DirectRunner, SQLite metadata."""

import contextlib
import dataclasses
import logging
import os
import re
import sys
import time
from typing import Callable, Dict, List, Optional

from absl import logging as absl_logging
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from data import spans
from pipeline.config import PipelineConfig
from pipeline.fingerprint import schema_snapshot, source_fingerprint
from pipeline.pipeline import create_pipeline, create_span_pipeline
from pipeline.results import ingested_spans

_COMPONENT_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")


@contextlib.contextmanager
def arguments_hidden_from_absl():
    """TFX's Beam executors parse sys.argv as absl flags (those absl knows): `recsys run -v`
    (or `pytest -v`) is absl's verbosity there, which takes the next argument as its level and
    failed every Beam component. The process's arguments are not the components'."""
    saved = sys.argv[1:]
    del sys.argv[1:]
    try:
        yield
    finally:
        sys.argv[1:] = saved


class ComponentTimer(logging.Handler):
    """Turns LocalDagRunner's component log lines into progress events with elapsed times."""

    def __init__(self, on_event: Callable[[str, str, float], None]):
        super().__init__(level=logging.INFO)
        self.durations: Dict[str, float] = {}
        self._started: Dict[str, float] = {}
        self._on_event = on_event

    def emit(self, record: logging.LogRecord) -> None:
        match = _COMPONENT_EVENT.match(record.getMessage())
        if not match:
            return
        component, state = match.groups()
        now = time.monotonic()
        if state == "running":
            self._started[component] = now
            self._on_event(component, state, 0.0)
        else:
            self.durations[component] = (self.durations.get(component, 0.0)
                                         + now - self._started.get(component, now))
            self._on_event(component, state, self.durations[component])


def missed_spans(config: PipelineConfig) -> List[int]:
    """Spans older than the latest that ExampleGen never read: they arrived between runs."""
    if not config.spanned:
        return []
    older = [span for span, _ in spans.spans(config.data_dir)][:-1]
    done = ingested_spans(config)
    return [span for span in older if span not in done]


def run(config: PipelineConfig,
        on_event: Optional[Callable[[str, str, float], None]] = None) -> Dict[str, float]:
    """Runs every component (after ExampleGen alone on spans it missed); returns each
    component's wall time in seconds, summed over those runs."""
    timer = ComponentTimer(on_event or (lambda *_: None))
    # LocalDagRunner logs through absl. Set absl's verbosity flag, not the logger's level:
    # TF resets the level to that flag whenever it saves a model.
    previous_verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(timer)
    try:
        config = dataclasses.replace(config, schema_file=schema_snapshot(
            config.schema_file, os.path.join(config.output_dir, "schemas")))
        code_version = source_fingerprint()
        with arguments_hidden_from_absl():
            for span in missed_spans(config):
                LocalDagRunner().run(create_span_pipeline(config, code_version, span))
            LocalDagRunner().run(create_pipeline(config, code_version))
    finally:
        absl_logger.removeHandler(timer)
        absl_logging.set_verbosity(previous_verbosity)
    return timer.durations
