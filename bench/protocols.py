"""Writes the evaluation protocols' splits as pre-split raw folders the pipeline reads.

<dest>/<protocol>/train/ and <dest>/<protocol>/eval/ each hold ratings.csv plus the full side
tables, so `PipelineConfig(presplit=True)` runs the real pipeline on exactly that split.
"""

import os
import shutil
from typing import Callable, Dict, List

import numpy as np

from data import raw_format as R
from data import splits

SPLITS = ("train", "eval")


def _read_ratings(folder: str) -> List[List[str]]:
    path = os.path.join(folder, R.RATINGS_FILE)
    return [values for _, values in R.read_rows(path, R.RATINGS_COLUMNS)]


def protocol_masks(rows: List[List[str]]) -> Dict[str, Callable[[], np.ndarray]]:
    """is_test mask builders by protocol name, over the ratings rows in file order."""
    users = np.array([r[0] for r in rows])
    items = np.array([r[1] for r in rows])
    timestamps = np.array([int(r[3]) for r in rows])
    masks = {f"u{fold}": (lambda fold=fold: splits.canonical_fold(len(rows), fold))
             for fold in range(1, 6)}
    masks["stratified"] = lambda: splits.stratified_by_item(items)
    masks["cold_start"] = lambda: splits.cold_start_users(users)
    masks["temporal"] = lambda: splits.temporal(timestamps)
    return masks


def write_protocol(source: str, dest: str, rows: List[List[str]], is_test: np.ndarray) -> str:
    """Writes one protocol's train/ and eval/ raw folders (atomically, skipped if present)."""
    if os.path.isdir(dest):
        return dest
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split, selected in zip(SPLITS, (~is_test, is_test)):
        folder = os.path.join(tmp, split)
        os.makedirs(folder)
        R.write_csv(os.path.join(folder, R.RATINGS_FILE), R.RATINGS_COLUMNS,
                    (row for row, keep in zip(rows, selected) if keep))
        for side in (R.USERS_FILE, R.ITEMS_FILE):
            shutil.copyfile(os.path.join(source, side), os.path.join(folder, side))
    os.replace(tmp, dest)
    return dest


def write_protocols(source: str, dest: str, names=None) -> Dict[str, str]:
    """Writes the named protocols (default all) of the raw folder `source` under `dest`."""
    rows = _read_ratings(source)
    masks = protocol_masks(rows)
    return {name: write_protocol(source, os.path.join(dest, name), rows, masks[name]())
            for name in (names or masks)}
