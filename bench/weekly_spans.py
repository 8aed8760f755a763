"""Ratings cut into weeks by timestamp, and span folders written from them: the data of the
replay and of `make bench`'s new-span run."""

import os
import shutil
from typing import Dict, List

WEEK_SECONDS = 7 * 24 * 3600
BOOTSTRAP_SHARE = 0.6


def weekly_batches(ratings) -> List[list]:
    """The ratings grouped into consecutive weeks (empty weeks dropped); the weeks up to the
    first 60% of ratings are merged into the first group, the bootstrap."""
    start = min(r.timestamp for r in ratings)
    weeks: Dict[int, list] = {}
    for rating in ratings:
        weeks.setdefault((rating.timestamp - start) // WEEK_SECONDS, []).append(rating)
    ordered = [weeks[w] for w in sorted(weeks)]
    bootstrap, seen = [], 0
    while ordered and seen < BOOTSTRAP_SHARE * len(ratings):
        seen += len(ordered[0])
        bootstrap += ordered.pop(0)
    return [bootstrap] + ordered


def write_ratings(path: str, ratings) -> str:
    from data import raw_format as R

    R.write_csv(path, R.RATINGS_COLUMNS, [R.rating_row(r) for r in ratings])
    return path


def write_first_span(data: str, spans_dir: str, ratings) -> None:
    """spans_dir/span-0: these ratings with the raw folder data's users and items."""
    from data import raw_format as R
    from data.spans import span_name

    first = os.path.join(spans_dir, span_name(0))
    os.makedirs(first)
    for name in (R.USERS_FILE, R.ITEMS_FILE):
        shutil.copy(os.path.join(data, name), first)
    write_ratings(os.path.join(first, R.RATINGS_FILE), ratings)
