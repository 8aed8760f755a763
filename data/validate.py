"""Checks a raw data folder before any component runs, one streaming pass per file.

Stops at the first broken rule with a DataError naming file, row, field and rule, so a bad
folder never reaches ExampleGen and nothing is written or pushed.
"""

import dataclasses
import os
from typing import Dict, Set

from components import features as F
from data import raw_format as R


@dataclasses.dataclass(frozen=True)
class FolderSummary:
    ratings: int
    users: int
    items: int


def _ids(path: str, columns, parse, id_field: str) -> Set[str]:
    seen: Dict[str, int] = {}
    for row, values in R.read_rows(path, columns):
        record = parse(path, row, values)
        key = getattr(record, id_field)
        if key in seen:
            raise R.duplicate_id(path, row, id_field, key, seen[key])
        seen[key] = row
    return set(seen)


def validate_folder(folder: str) -> FolderSummary:
    """Validates ratings.csv, users.csv and items.csv in `folder`; returns their row counts."""
    paths = {name: os.path.join(folder, name) for name in R.COLUMNS}
    users = _ids(paths[R.USERS_FILE], R.USERS_COLUMNS, R.parse_user, F.USER_ID)
    items = _ids(paths[R.ITEMS_FILE], R.ITEMS_COLUMNS, R.parse_item, F.ITEM_ID)
    path = paths[R.RATINGS_FILE]
    count = 0
    for row, values in R.read_rows(path, R.RATINGS_COLUMNS):
        rating = R.parse_rating(path, row, values)
        if rating.user_id not in users:
            raise R.DataError(path, row, F.USER_ID,
                              f"user {rating.user_id!r} is not in {R.USERS_FILE}")
        if rating.item_id not in items:
            raise R.DataError(path, row, F.ITEM_ID,
                              f"item {rating.item_id!r} is not in {R.ITEMS_FILE}")
        count += 1
    return FolderSummary(ratings=count, users=len(users), items=len(items))
