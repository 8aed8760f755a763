"""Content fingerprints that make TFX's cache see edits it would otherwise miss.

Components referenced by module path (Transform's preprocessing_fn, Trainer's run_fn, the
ExampleGen executor) and ImportSchemaGen's schema path look the same to the cache after an
edit; a fingerprint of their source, and a content-addressed copy of the schema, do not.
"""

import dataclasses
import glob
import hashlib
import json
import os
import shutil

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the components run: their package, subpackages included, and the raw-format parsers
# ExampleGen uses.
SOURCE_FILES = ("components/**/*.py", "data/raw_format.py")


def _digest(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(os.path.relpath(path, PROJECT_DIR).encode())
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def source_fingerprint() -> str:
    """Changes whenever any module the components run changes."""
    return _digest(path for pattern in SOURCE_FILES
                   for path in glob.glob(os.path.join(PROJECT_DIR, pattern), recursive=True))


def schema_snapshot(schema_file: str, directory: str) -> str:
    """Copies the schema to directory/<content hash>/ and returns the copy's path."""
    target = os.path.join(directory, _digest([schema_file]), os.path.basename(schema_file))
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(schema_file, target + ".tmp")
        os.replace(target + ".tmp", target)
    return target


def run_fingerprint(config, code_version: str) -> str:
    """Changes with anything a run reads: code, settings, the schema's content and the raw
    files (path, size, modification time: what ExampleGen's own fingerprint uses)."""
    digest = hashlib.sha256(code_version.encode())
    digest.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    digest.update(_digest([config.schema_file]).encode())
    for path in sorted(glob.glob(os.path.join(config.data_dir, "**", "*.csv"), recursive=True)):
        info = os.stat(path)
        digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]
