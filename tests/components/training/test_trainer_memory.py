"""The Trainer hands its freed heap back to the system before the components after it run in
the same process (at -10M's shape the process kept ~8 GB it no longer used)."""

import ctypes.util
import resource

import pytest

from components.training import trainer


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e6


@pytest.mark.skipif(ctypes.util.find_library("c") != "libc.so.6", reason="glibc only")
def test_freed_memory_goes_back_to_the_system():
    chunks = [bytes(4000) for _ in range(100_000)]  # ~400 MB of malloc'd blocks
    kept = chunks[::16]  # every 16th stays: free() alone cannot shrink the heap past them
    del chunks
    before = _resident_mb()
    trainer._return_freed_memory()
    assert before - _resident_mb() > 200
    del kept
