"""What `recsys` sets for every TensorFlow process before TensorFlow is imported."""

import os
import subprocess
import sys

import pytest

# In a fresh process: the environment as `recsys` sets it, then 8 tensors of 64 MB made and
# dropped; prints the resident MB before they were made and after they were dropped.
_PROBE = """
import gc, os, resource, sys
from pipeline.cli import _process_environment
_process_environment(verbose=False)
os.environ.update(dict(arg.split("=", 1) for arg in sys.argv[1:]))
import numpy as np, tensorflow as tf
def resident_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e6
before = resident_mb()
tensors = [tf.constant(np.full(8_000_000, i, np.int64)) for i in range(8)]
del tensors
gc.collect()
print(before, resident_mb())
"""


def _kept_mb(*environment) -> float:
    inherited = {key: value for key, value in os.environ.items()
                 if key != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}  # as a user's shell would have
    finished = subprocess.run([sys.executable, "-c", _PROBE, *environment], check=True,
                              capture_output=True, text=True, env=inherited)
    before, after = map(float, finished.stdout.split())
    return after - before


@pytest.mark.skipif(os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0", reason="oneDNN off")
def test_tensors_dropped_go_back_to_the_system():
    """oneDNN's own pool keeps them: the Trainer's ~8 GB at -10M's shape stayed with the
    process after the Trainer. TF turns oneDNN on by default on recent Intel processors only,
    so it is turned on here: the pool is measured on every machine kind."""
    assert _kept_mb() < 150
    assert _kept_mb("TF_ENABLE_ONEDNN_OPTS=1") < 150
    # the pool, for contrast
    assert _kept_mb("TF_ONEDNN_USE_SYSTEM_ALLOCATOR=0", "TF_ENABLE_ONEDNN_OPTS=1") > 400
