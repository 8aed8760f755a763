"""One writer at a time: one run per output folder (two would share one metadata store and
push over each other), one ingest per data folder (two would number their spans alike and clear
each other's staging folders).

A process holds a folder by an exclusive flock on its lock file: the kernel lets go when the
process dies, however it dies, so a killed run never leaves a lock to clear by hand. The file
holds the owner's host and pid for the message a second process gets; a file still holding
them when its lock is taken is the mark of a holder that was killed, which the caller is told.

An Airflow DAG run spans many task processes, so it holds the output folder by a lease file
instead, taken under the lock by its first task and given back by its last, whatever became of
the tasks between (pipeline/airflow_runner.py). A run or rollback refuses while a lease exists.
"""

import contextlib
import fcntl
import json
import os
import socket
import time
from typing import Callable, Iterator, Optional

LOCK_FILE = ".run.lock"
INGEST_LOCK_FILE = ".ingest.lock"
LEASE_FILE = ".dag-run.lease"


class OutputLockedError(RuntimeError):
    """Another live process, or an Airflow DAG run, holds the folder."""


def _read(path: str) -> dict:
    """The owner a lock file names; {} for none (no file, or one just created)."""
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        return {}
    except OSError:
        return {"unreadable": True}
    if not content:
        return {}
    try:
        owner = json.loads(content)
    except ValueError:
        return {"unreadable": True}
    return owner if isinstance(owner, dict) else {"unreadable": True}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def held(folder: str, name: str = LOCK_FILE) -> bool:
    """Whether a live process on this host holds the folder now (read, not taken)."""
    owner = _read(os.path.join(folder, name))
    return (owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int)
            and _alive(owner["pid"]))


def _open_locked(path: str) -> Optional[int]:
    """The lock file's descriptor, flocked; None while another process holds it."""
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return None
        try:
            if os.fstat(handle).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)  # locked a file its holder removed as it let go: take the new one


def _held_message(folder: str, path: str, owner: dict, what: str) -> str:
    if "dag_run" in owner:
        return (f"the Airflow DAG run {owner['dag_run']} is using {folder} (since "
                f"{owner.get('started')}); wait for it to finish, or delete {path} if that "
                "DAG run is gone")
    return (f"another {what} is using {folder} (pid {owner.get('pid')} on "
            f"{owner.get('host')}, started {owner.get('started')}); wait for it to finish")


@contextlib.contextmanager
def folder_lock(folder: str, name: str, what: str,
                on_stale: Callable[[dict], None] = lambda owner: None,
                check_lease: bool = False) -> Iterator[None]:
    """Holds `folder`/`name` while the block runs; `what` names the holder in the error.
    on_stale(owner) is called when the previous holder was killed holding it."""
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    handle = _open_locked(path)
    if handle is None:
        raise OutputLockedError(_held_message(folder, path, _read(path), what))
    try:
        lease = os.path.join(folder, LEASE_FILE)
        if check_lease and os.path.exists(lease):
            raise OutputLockedError(_held_message(folder, lease, _read(lease), what))
        previous = _read(path)
        if previous:
            on_stale(previous)
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                      "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        yield
    finally:
        os.remove(path)
        os.close(handle)
        if created and not os.listdir(folder):
            os.rmdir(folder)  # refused before writing anything: no folder left behind


def output_lock(output_dir: str, on_stale: Callable[[dict], None] = lambda owner: None):
    """One run (or rollback) per output folder, and none during an Airflow DAG run."""
    return folder_lock(output_dir, LOCK_FILE, "run", on_stale, check_lease=True)


def ingest_lock(data_dir: str, on_stale: Callable[[dict], None] = lambda owner: None):
    """One ingest per data folder."""
    return folder_lock(data_dir, INGEST_LOCK_FILE, "ingest", on_stale)


def take_lease(output_dir: str, dag_run: str) -> None:
    """The Airflow DAG run's hold on the output folder; call under output_lock."""
    path = os.path.join(output_dir, LEASE_FILE)
    with open(path + ".tmp", "w") as handle:
        json.dump({"dag_run": dag_run, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, handle)
    os.replace(path + ".tmp", path)


def give_back_lease(output_dir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(output_dir, LEASE_FILE))
