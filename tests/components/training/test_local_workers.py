"""components/training/local_workers.py: one failing worker stops the rest and is named."""

import os
import time

import attr
import pytest

from components.training.local_workers import WorkerFailedError, train_on_local_workers


@attr.s
class _Args:
    model_run_dir = attr.ib()
    serving_model_dir = attr.ib(default="")
    eval_model_dir = attr.ib(default="")


def _second_worker_fails(fn_args):
    task = os.environ["TF_CONFIG"]
    if '"index": 1' in task:
        raise RuntimeError("worker one gave up")
    time.sleep(600)  # the chief waits for it, as in a collective op


def test_a_failing_worker_stops_the_others_and_is_named(tmp_path):
    started = time.monotonic()
    with pytest.raises(WorkerFailedError, match="worker 1 exited with 1") as raised:
        train_on_local_workers(_Args(str(tmp_path / "run")), 2, _second_worker_fails)
    assert "worker one gave up" in str(raised.value)
    assert time.monotonic() - started < 300
    assert sorted(os.listdir(tmp_path / "run")) == ["worker-0.log", "worker-1.log"]
