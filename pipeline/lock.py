"""One run at a time per output folder: two runs would share one metadata store and push
over each other.

The lock is a file created exclusively (O_EXCL) holding the owner's host and pid. A lock whose
owner process is gone (a killed run) is stale: it is cleared and taken, and the caller is told.
"""

import contextlib
import json
import os
import socket
import time
from typing import Callable, Iterator

LOCK_FILE = ".run.lock"


class OutputLockedError(RuntimeError):
    """Another live run holds the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _take(path: str) -> bool:
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as stream:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, stream)
    return True


def _owner(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}  # being written, or unreadable: treat as held


@contextlib.contextmanager
def output_lock(output_dir: str, on_stale: Callable[[dict], None] = lambda owner: None
                ) -> Iterator[None]:
    created = not os.path.isdir(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_FILE)
    if not _take(path):
        owner = _owner(path)
        stale = (owner.get("host") == socket.gethostname()
                 and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]))
        if not stale:
            where = (f"pid {owner['pid']} on {owner.get('host')}, started {owner.get('started')}"
                     if owner else "unknown owner")
            raise OutputLockedError(f"another run is using {output_dir} ({where}); wait for it "
                                    f"to finish, or delete {path} if that run is gone")
        on_stale(owner)
        os.remove(path)
        if not _take(path):
            raise OutputLockedError(f"another run took {output_dir} just now")
    try:
        yield
    finally:
        os.remove(path)
        if created and not os.listdir(output_dir):
            os.rmdir(output_dir)  # a run refused before writing anything leaves no folder
