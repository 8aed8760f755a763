"""The serving folder's versions, as TF Serving reads them: numbered folders, the highest served.

A version is published whole or not at all: copied into a dot-named folder that no server
reads, flushed to disk, then renamed into place. A process killed mid-copy, or a full disk,
leaves only the dot-named folder, which the next publish clears. The Pusher publishing the
model the highest version already holds (a push whose run was killed before ML Metadata
recorded it, pushed again by the rerun) gets that version back rather than a second copy.
"""

import os
import shutil
import time
from typing import List, Optional

STAGING_PREFIX = ".staging-"


def numbered_versions(serving_dir: str) -> List[str]:
    """Version folders, oldest first (folders still being written skipped)."""
    names = os.listdir(serving_dir) if os.path.isdir(serving_dir) else []
    return sorted((n for n in names if n.isdigit()), key=int)


def fingerprint(version_dir: str) -> Optional[bytes]:
    """The SavedModel's fingerprint (checksums of its graph and variables): what a copy of a
    version shares with it."""
    path = os.path.join(version_dir, "fingerprint.pb")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def next_version(serving_dir: str) -> str:
    """The Unix time, as TFX's Pusher numbers versions, but always above the highest: a
    rollback in the same second may have taken that number."""
    versions = numbered_versions(serving_dir)
    return str(max(int(time.time()), int(versions[-1]) + 1 if versions else 0))


def _flush(folder: str) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())


def clear_staging(serving_dir: str) -> None:
    """Folders of publishes that were killed or ran out of space."""
    if os.path.isdir(serving_dir):
        for name in os.listdir(serving_dir):
            if name.startswith(STAGING_PREFIX):
                shutil.rmtree(os.path.join(serving_dir, name), ignore_errors=True)


def publish(source_dir: str, serving_dir: str, reuse_highest: bool = False) -> str:
    """Copies source_dir in as the next version; returns the version. reuse_highest: the
    Pusher's rerun of a push ML Metadata never recorded returns the version it wrote."""
    os.makedirs(serving_dir, exist_ok=True)
    clear_staging(serving_dir)
    versions = numbered_versions(serving_dir)
    if reuse_highest and versions:
        digest = fingerprint(source_dir)
        if digest is not None and fingerprint(os.path.join(serving_dir, versions[-1])) == digest:
            return versions[-1]
    version = next_version(serving_dir)
    staged = os.path.join(serving_dir, STAGING_PREFIX + version)
    try:
        shutil.copytree(source_dir, staged)
        _flush(staged)
        os.rename(staged, os.path.join(serving_dir, version))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return version
