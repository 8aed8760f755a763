"""`recsys ingest`: a batch of new ratings (and new or changed users and items) becomes the
next span of the raw data folder.

The batch is checked whole before anything is written: every row against the raw format's
rules, every rating's user and item against the side tables as of the latest span plus the
batch's own. A batch with bad rows is refused, listing each (file, row, field, rule); with
`quarantine`, the bad rows go to the span's quarantine.csv with their reasons and the rest is
ingested. One ingest runs at a time per data folder. The span is written in a temporary folder
and renamed into place, so a crash leaves no half span (leftovers are cleared by the next
ingest). A batch whose content hash matches an earlier span's is refused: ingesting twice would
count every rating twice.
"""

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from components import features as F
from data import raw_format as R
from data import spans as S
from pipeline.lock import ingest_lock

QUARANTINE_FILE = "quarantine.csv"
QUARANTINE_COLUMNS = ("file", "row", "field", "rule", "values")
SHOWN_PROBLEMS = 20


class BatchRejectedError(R.DataError):
    """The batch has bad rows and was not ingested; `problems` lists every one."""

    def __init__(self, problems: Sequence[R.DataError]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"... and {len(self.problems) - SHOWN_PROBLEMS} more")
        super().__init__(self.problems[0].path, None, None,
                         f"batch rejected, nothing ingested: {len(self.problems)} bad row(s) "
                         "(use --quarantine to ingest the good rows):\n  " + "\n  ".join(lines))

    def __reduce__(self):
        return BatchRejectedError, (self.problems,)


class DuplicateBatchError(R.DataError):
    """The same batch (by content hash) is already a span."""


@dataclasses.dataclass(frozen=True)
class IngestResult:
    span: int
    folder: str
    ratings: int
    new_users: int
    changed_users: int
    new_items: int
    changed_items: int
    quarantined: int


@dataclasses.dataclass
class _Table:
    """One parsed batch file: good records by id (users, items) or in order (ratings), and the
    raw values of every row, for the quarantine file."""

    path: str
    records: list
    rows: List[int]
    values: Dict[int, List[str]]


def _parse(path: str, name: str, problems: List[R.DataError]) -> _Table:
    table = _Table(path, [], [], {})
    seen: Dict[str, int] = {}
    for row, values in R.read_rows(path, R.COLUMNS[name]):  # header errors reject the batch
        table.values[row] = values
        try:
            record = R.PARSERS[name](path, row, values)
        except R.DataError as error:
            problems.append(error)
            continue
        key = None if name == R.RATINGS_FILE else (
            record.user_id if name == R.USERS_FILE else record.item_id)
        if key is not None and key in seen:
            problems.append(R.duplicate_id(
                path, row, F.USER_ID if name == R.USERS_FILE else F.ITEM_ID, key, seen[key]))
            continue
        if key is not None:
            seen[key] = row
        table.records.append(record)
        table.rows.append(row)
    return table


def _content_hash(paths: Sequence[Optional[str]]) -> str:
    digest = hashlib.sha256()
    for name, path in zip(R.COLUMNS, paths):
        digest.update(f"{name}\0".encode())
        if path is not None:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _clear_leftovers(data_dir: str) -> None:
    """Temporary folders of ingests that crashed; no span ever points into them."""
    for name in os.listdir(data_dir):
        if name.startswith(S.TEMP_PREFIX):
            shutil.rmtree(os.path.join(data_dir, name))


@contextlib.contextmanager
def _staging(folder: str) -> Iterator[None]:
    """A span's folder while it is written: removed if writing it fails (a full disk)."""
    os.makedirs(folder)
    try:
        yield
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _move_in(data_dir: str, staged: str, span: int) -> str:
    target = os.path.join(data_dir, S.span_name(span))
    try:
        os.rename(staged, target)  # atomic; fails if another ingest took this span number
    except OSError:
        shutil.rmtree(staged, ignore_errors=True)
        raise R.DataError(target, None, None,
                          "another ingest wrote this span at the same time; retry") from None
    return target


def _adopt_flat_folder(data_dir: str) -> None:
    """A folder without spans (as `recsys fetch` writes it) becomes span 0, once."""
    flat = [os.path.join(data_dir, name) for name in R.COLUMNS]
    if S.is_spanned(data_dir) or not all(os.path.exists(p) for p in flat):
        return
    staged = os.path.join(data_dir, f"{S.TEMP_PREFIX}{S.span_name(0)}")
    with _staging(staged):
        for path in flat:
            shutil.copy2(path, staged)
        _write_manifest(staged, 0, _content_hash(flat), {"adopted": "the folder's own files"})
    _move_in(data_dir, staged, 0)
    for path in flat:
        os.remove(path)


def _write_manifest(folder: str, span: int, digest: str, details: dict) -> None:
    with open(os.path.join(folder, S.MANIFEST_FILE), "w", encoding="utf-8") as handle:
        json.dump({"span": span, "sha256": digest,
                   "ingested_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   **details}, handle, indent=2)


def _merge(previous: list, batch: list, key: str) -> Tuple[list, int, int]:
    """Previous side-table records with the batch's applied: (records, new, changed)."""
    merged = {getattr(r, key): r for r in previous}
    new = sum(getattr(r, key) not in merged for r in batch)
    changed = sum(getattr(r, key) in merged and merged[getattr(r, key)] != r for r in batch)
    merged.update({getattr(r, key): r for r in batch})
    return list(merged.values()), new, changed


def ingest(data_dir: str, ratings_file: str, users_file: Optional[str] = None,
           items_file: Optional[str] = None, quarantine: bool = False) -> IngestResult:
    """Validates the batch and writes it as the next span of data_dir; see the module doc.
    One ingest at a time per data folder (pipeline/lock.py): a second one is refused."""
    if not os.path.isdir(data_dir):
        raise R.DataError(data_dir, None, None, "no such data folder")
    with ingest_lock(data_dir):
        return _ingest(data_dir, ratings_file, users_file, items_file, quarantine)


def _ingest(data_dir: str, ratings_file: str, users_file: Optional[str],
            items_file: Optional[str], quarantine: bool) -> IngestResult:
    if not S.is_spanned(data_dir) and not os.path.exists(os.path.join(data_dir,
                                                                      R.RATINGS_FILE)):
        raise R.DataError(data_dir, None, None,
                          "not a raw data folder: no spans and no ratings.csv "
                          "(`recsys fetch` or your own ratings.csv, users.csv, items.csv)")
    _clear_leftovers(data_dir)
    digest = _content_hash([ratings_file, users_file, items_file])
    for span, folder in S.spans(data_dir):
        if (S.manifest(folder) or {}).get("sha256") == digest:
            raise DuplicateBatchError(ratings_file, None, None,
                                      f"this batch was already ingested as span {span} "
                                      f"({folder}); nothing written")
    latest = S.latest_folder(data_dir)
    span = S.spans(data_dir)[-1][0] + 1 if S.is_spanned(data_dir) else 1

    problems: List[R.DataError] = []
    users = _parse(users_file, R.USERS_FILE, problems) if users_file else None
    items = _parse(items_file, R.ITEMS_FILE, problems) if items_file else None
    ratings = _parse(ratings_file, R.RATINGS_FILE, problems)
    all_users, new_users, changed_users = _merge(
        R.read_table(latest, R.USERS_FILE), users.records if users else [], "user_id")
    all_items, new_items, changed_items = _merge(
        R.read_table(latest, R.ITEMS_FILE), items.records if items else [], "item_id")
    user_ids = {u.user_id for u in all_users}
    item_ids = {i.item_id for i in all_items}
    good = []
    for rating, row in zip(ratings.records, ratings.rows):
        for field, value, known, table in ((F.USER_ID, rating.user_id, user_ids, R.USERS_FILE),
                                           (F.ITEM_ID, rating.item_id, item_ids, R.ITEMS_FILE)):
            if value not in known:
                problems.append(R.DataError(
                    ratings_file, row, field,
                    f"{value!r} is in neither {table} of {os.path.basename(latest)} nor the "
                    "batch's own"))
                break
        else:
            good.append(rating)
    if problems and not quarantine:
        raise BatchRejectedError(sorted(problems, key=lambda p: (p.path, p.row or 0)))
    if not good:
        raise R.DataError(ratings_file, None, None, "no valid rating left to ingest")

    _adopt_flat_folder(data_dir)
    staged = os.path.join(data_dir, f"{S.TEMP_PREFIX}{S.span_name(span)}")
    with _staging(staged):
        R.write_csv(os.path.join(staged, R.USERS_FILE), R.USERS_COLUMNS,
                    [R.user_row(u) for u in all_users])
        R.write_csv(os.path.join(staged, R.ITEMS_FILE), R.ITEMS_COLUMNS,
                    [R.item_row(i) for i in all_items])
        R.write_csv(os.path.join(staged, R.RATINGS_FILE), R.RATINGS_COLUMNS,
                    [R.rating_row(r) for r in good])
        if problems:
            tables = {t.path: t for t in (users, items, ratings) if t is not None}
            R.write_csv(os.path.join(staged, QUARANTINE_FILE), QUARANTINE_COLUMNS, [
                [p.path, p.row, p.field or "", p.rule,
                 ",".join(tables[p.path].values.get(p.row, []))] for p in problems])
        _write_manifest(staged, span, digest, {
            "sources": [os.path.abspath(p) for p in (ratings_file, users_file, items_file) if p],
            "ratings": len(good), "quarantined": len(problems)})
    folder = _move_in(data_dir, staged, span)
    return IngestResult(span=span, folder=folder, ratings=len(good), new_users=new_users,
                        changed_users=changed_users, new_items=new_items,
                        changed_items=changed_items, quarantined=len(problems))
