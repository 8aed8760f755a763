"""Runs the pipeline in this process: LocalDagRunner, Beam DirectRunner, SQLite metadata."""

import dataclasses
import logging
import os
import re
import time
from typing import Callable, Dict, Optional

from absl import logging as absl_logging
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.fingerprint import schema_snapshot, source_fingerprint
from pipeline.pipeline import create_pipeline

_COMPONENT_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")


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
            self.durations[component] = now - self._started.get(component, now)
            self._on_event(component, state, self.durations[component])


def run(config: PipelineConfig,
        on_event: Optional[Callable[[str, str, float], None]] = None) -> Dict[str, float]:
    """Runs every component; returns each component's wall time in seconds."""
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
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, source_fingerprint()))
    finally:
        absl_logger.removeHandler(timer)
        absl_logging.set_verbosity(previous_verbosity)
    return timer.durations
