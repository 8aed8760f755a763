"""The raw data folder as spans: DATA/span-0/, DATA/span-1/, ... each a complete raw folder.

A span holds the ratings that arrived in it and the side tables (users.csv, items.csv) as of
that span: every user and item known so far, with changes applied. Earlier spans are never
rewritten, so each span's ratings join with the features they had when they arrived.
ExampleGen reads `span-{SPAN}/ratings.csv`; a folder without spans (ratings.csv at the top,
as `recsys fetch` writes it) is read as one folder, and the first `recsys ingest` turns it
into span 0.
"""

import json
import os
import re
from typing import List, Optional, Tuple

SPAN_PATTERN = "span-{SPAN}"
MANIFEST_FILE = "manifest.json"
_SPAN_NAME = re.compile(r"span-([0-9]+)")
TEMP_PREFIX = ".incoming-"


def span_name(span: int) -> str:
    return SPAN_PATTERN.replace("{SPAN}", str(span))


def spans(data_dir: str) -> List[Tuple[int, str]]:
    """(span number, folder) of every span, oldest first."""
    if not os.path.isdir(data_dir):
        return []
    found = []
    for name in os.listdir(data_dir):
        match = _SPAN_NAME.fullmatch(name)
        if match and os.path.isdir(os.path.join(data_dir, name)):
            found.append((int(match.group(1)), os.path.join(data_dir, name)))
    return sorted(found)


def is_spanned(data_dir: str) -> bool:
    return bool(spans(data_dir))


def latest_folder(data_dir: str) -> str:
    """The raw folder with the newest side tables: the latest span, or the folder itself."""
    found = spans(data_dir)
    return found[-1][1] if found else data_dir


def manifest(folder: str) -> Optional[dict]:
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
