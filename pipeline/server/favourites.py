"""What each user rated highly, from the data folder's ratings (every span): the page shows it
beside their recommendations. Built once, in one streaming pass, keeping a few per user."""

import glob
import heapq
import os
from typing import Dict, List, Tuple

from data import raw_format as R

PER_USER = 10


def rating_files(data_dir: str) -> List[str]:
    """ratings.csv of the folder and of each span folder under it."""
    return sorted(glob.glob(os.path.join(data_dir, "**", R.RATINGS_FILE), recursive=True))


def favourites(data_dir: str, per_user: int = PER_USER) -> Dict[str, List[Tuple[str, float]]]:
    """user id → their per_user highest-rated (item id, rating), best and latest first."""
    kept: Dict[str, list] = {}
    for path in rating_files(data_dir):
        for row, values in R.read_rows(path, R.RATINGS_COLUMNS):
            rating = R.PARSERS[R.RATINGS_FILE](path, row, values)
            heap = kept.setdefault(rating.user_id, [])
            entry = (rating.rating, rating.timestamp, rating.item_id)
            if len(heap) < per_user:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
    return {user: [(item, value) for value, _, item in sorted(heap, reverse=True)]
            for user, heap in kept.items()}
