"""Python's cyclic garbage collector in a `recsys` process.

TensorFlow, TFX, Beam and TFMA import ~640K objects that live as long as the process, and
every full collection walks them all: seconds of the imports, of a run and of the exit
(docs/design.md). Imported with the collector paused (the imports leave ~2 MB of cyclic
garbage) and then frozen, those objects are left out of every later collection.
Freezing is for a process of its own only: frozen cycles are never freed, so in a caller's
process (tests, a notebook) it would pin whatever garbage the caller had not yet collected.
"""

import contextlib
import gc
import sys
from typing import Iterator, NoReturn


@contextlib.contextmanager
def long_lived(freeze: bool) -> Iterator[None]:
    """For imports: no collections while they run; then, where freeze, what exists frozen
    (skipped by every later collection)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def exit_uncollected(code: int) -> NoReturn:
    """sys.exit without the interpreter's last full collection: the process's memory goes
    back to the system whole. atexit handlers still run and the standard streams are still
    flushed; what is lost is the finalizer (__del__) of an object left in a reference cycle."""
    gc.freeze()
    sys.exit(code)
