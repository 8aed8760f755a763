"""Multi-worker training on one machine: the Trainer's run in `workers` processes of their
own, each a worker of tf.distribute's MultiWorkerMirroredStrategy, found by a TF_CONFIG
that names them all on localhost (as a training job's cluster names its machines).

The Trainer's own process cannot be one: it ran TensorFlow before (Transform's graph, the
components before it), and collective ops are configured only at a process's start. Worker
0, the chief, writes the Trainer's outputs; the others write theirs (every worker saves, as
the strategy needs) into a scratch folder removed after. One worker failing stops them all:
the rest would wait for it in their next collective op.

Usage (by train_on_local_workers only): python -m components.training.local_workers JOB INDEX
"""

import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable

import attr
import cloudpickle

LOG_TAIL = 3000  # characters of a failed worker's log in the error
POLL_SECONDS = 0.5


class WorkerFailedError(RuntimeError):
    """A training worker process exited with an error."""


def _free_ports(count: int):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def train_on_local_workers(fn_args, workers: int, train: Callable) -> None:
    """train(fn_args) in `workers` processes; each worker's log is model_run_dir/worker-N.log."""
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(workers)]}
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="training-workers-") as scratch:
        job = os.path.join(scratch, "job.pkl")
        with open(job, "wb") as handle:
            cloudpickle.dump((fn_args, train, scratch), handle)
        processes, logs = [], []
        try:
            for index in range(workers):
                logs.append(os.path.join(fn_args.model_run_dir, f"worker-{index}.log"))
                with open(logs[-1], "wb") as log:
                    environment = {**os.environ, "TF_CONFIG": json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": index}})}
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", __name__, job, str(index)], env=environment,
                        stdout=log, stderr=subprocess.STDOUT))
            _wait_for_all(processes, logs)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _wait_for_all(processes, logs) -> None:
    while True:
        codes = [process.poll() for process in processes]
        failed = next((index for index, code in enumerate(codes) if code not in (None, 0)),
                      None)
        if failed is not None:
            with open(logs[failed], errors="replace") as log:
                tail = log.read()[-LOG_TAIL:]
            raise WorkerFailedError(f"training worker {failed} exited with {codes[failed]} "
                                    f"({logs[failed]}):\n{tail}")
        if all(code == 0 for code in codes):
            return
        time.sleep(POLL_SECONDS)


def _worker(job: str, index: int) -> None:
    from components.training.trainer import multi_worker_strategy

    multi_worker_strategy()  # first: before any TensorFlow op configures this process
    with open(job, "rb") as handle:
        fn_args, train, scratch = pickle.load(handle)
    if index:
        own = os.path.join(scratch, f"worker-{index}")
        fn_args = attr.evolve(fn_args, **{
            name: os.path.join(own, name)
            for name in ("serving_model_dir", "eval_model_dir", "model_run_dir")})
        os.makedirs(fn_args.model_run_dir)
    train(fn_args)


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]))
