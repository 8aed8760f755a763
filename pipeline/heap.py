"""Python's cyclic garbage collector in a `recsys` process.

TensorFlow, TFX, Beam and TFMA import ~640K objects that live as long as the process, and
every full collection walks them all. On ML-100K (AMD EPYC, 2 cores) collections took 1.8–2.5
s of the 7 s of imports, ~2.5 s during a run, and 2.2 s at exit, when the interpreter collects
once more before it frees anything. Imported with the collector paused (the imports leave ~2
MB of cyclic garbage) and then frozen, those objects are left out of every later collection.
"""

import contextlib
import gc
import sys
from typing import Iterator, NoReturn


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """For imports: no collections while they run, and what then exists frozen (skipped by
    every later collection). Nothing is frozen where nothing new was imported, so a caller
    that runs `recsys` in process many times (the tests) freezes its heap once."""
    modules, enabled = len(sys.modules), gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if len(sys.modules) > modules:
            gc.freeze()
        if enabled:
            gc.enable()


def exit_uncollected(code: int) -> NoReturn:
    """sys.exit without the interpreter's last full collection: the process's memory goes
    back to the system whole. Only where the process ends: frozen cycles are never freed."""
    gc.freeze()
    sys.exit(code)
