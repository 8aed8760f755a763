"""Writes the evaluation protocols' splits as raw folders.

<dest>/<protocol>/train/ and <dest>/<protocol>/eval/ each hold ratings.csv plus the full side
tables: train/ is a data folder as a user gives `recsys run`, eval/ what its model is scored on.
"""

import os
import shutil
from typing import Callable, Dict, List

import numpy as np

from data import raw_format as R
from data import splits

SPLITS = ("train", "eval")
VALIDATION_SEED = 7
SECOND_SEED = 43


def _read_ratings(folder: str) -> List[List[str]]:
    path = os.path.join(folder, R.RATINGS_FILE)
    return [values for _, values in R.read_rows(path, R.RATINGS_COLUMNS)]


def _columns(rows: List[List[str]]):
    return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
            np.array([int(r[3]) for r in rows]))


def protocol_masks(rows: List[List[str]]) -> Dict[str, Callable[[], np.ndarray]]:
    """is_test mask builders by protocol name, over the ratings rows in file order."""
    users, items, timestamps = _columns(rows)
    masks = {f"u{fold}": (lambda fold=fold: splits.canonical_fold(len(rows), fold))
             for fold in range(1, 6)}
    masks["stratified"] = lambda: splits.stratified_by_item(items)
    masks["stratified_seed2"] = lambda: splits.stratified_by_item(items, seed=SECOND_SEED)
    masks["leave_last_10"] = lambda: splits.leave_last(users, timestamps, per_user=10)
    masks["cold_start"] = lambda: splits.cold_start_users(users)
    # The same held-out users as cold_start, scored from their first answers (bench/scoring.py).
    masks["few_answers"] = lambda: splits.cold_start_users(users)
    masks["cold_items"] = lambda: splits.cold_items(items)
    masks["temporal"] = lambda: splits.temporal(timestamps)
    return masks


def validation_mask(protocol: str, rows: List[List[str]]) -> np.ndarray:
    """is_validation over a protocol's TRAIN rows, of the protocol's own kind, with another
    seed: settings are chosen on these, never on the protocol's test rows."""
    users, items, timestamps = _columns(rows)
    if protocol.startswith("stratified"):
        return splits.stratified_by_item(items, seed=VALIDATION_SEED)
    if protocol == "leave_last_10":
        return splits.leave_last(users, timestamps, per_user=10)
    if protocol in ("cold_start", "few_answers"):
        return splits.cold_start_users(users, seed=VALIDATION_SEED)
    if protocol == "cold_items":
        return splits.cold_items(items, seed=VALIDATION_SEED)
    if protocol == "temporal":
        return splits.temporal(timestamps)
    return splits.stratified_by_item(items, train_fraction=0.9, seed=VALIDATION_SEED)


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


def write_validation_protocols(protocol_folders: Dict[str, str], dest: str) -> Dict[str, str]:
    """For each written protocol, a protocol of train/ and eval/ carved from its train/ only."""
    folders = {}
    for name, folder in protocol_folders.items():
        train = os.path.join(folder, SPLITS[0])
        rows = _read_ratings(train)
        folders[name] = write_protocol(train, os.path.join(dest, name), rows,
                                       validation_mask(name, rows))
    return folders
