"""The project's raw data format: one folder with ratings.csv, users.csv and items.csv.

This is also how users bring their own data. Each parser turns one CSV row into typed values
or raises DataError naming the file, row, field and the rule it broke; ExampleGen and the
pre-run validation share these parsers, so both enforce the same rules.
"""

import csv
import dataclasses
import io
import os
import re
from typing import Iterator, List, Optional, Sequence, Tuple

from components import features as F

RATINGS_FILE = "ratings.csv"
USERS_FILE = "users.csv"
ITEMS_FILE = "items.csv"

RATINGS_COLUMNS = (F.USER_ID, F.ITEM_ID, F.RATING, F.TIMESTAMP)
USERS_COLUMNS = (F.USER_ID, F.AGE, F.GENDER, F.OCCUPATION, F.ZIP_CODE)
ITEMS_COLUMNS = (F.ITEM_ID, F.TITLE, F.YEAR, F.GENRES)
COLUMNS = {RATINGS_FILE: RATINGS_COLUMNS, USERS_FILE: USERS_COLUMNS, ITEMS_FILE: ITEMS_COLUMNS}

GENRE_SEPARATOR = "|"
RATING_RANGE = (1.0, 5.0)
AGE_RANGE = (1, 120)
YEAR_RANGE = (1800, 2100)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOM = "\ufeff"


class DataError(ValueError):
    """A rule of the raw format broken at a known place; str() is the one line users see."""

    def __init__(self, path: str, row: Optional[int], field: Optional[str], rule: str):
        self.path, self.row, self.field, self.rule = path, row, field, rule
        where = path if row is None else f"{path}, row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {rule}")

    def __reduce__(self):  # Beam workers pickle exceptions; keep the four parts.
        return DataError, (self.path, self.row, self.field, self.rule)


@dataclasses.dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    timestamp: int


@dataclasses.dataclass(frozen=True)
class User:
    user_id: str
    age: int
    gender: str
    occupation: str
    zip_code: str


@dataclasses.dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    year: int  # 0 when unknown
    genres: Tuple[str, ...]


def split_csv_line(line: str) -> List[str]:
    """Splits one CSV line (titles may hold quoted commas). A line without quotes, as every
    ratings line is, is split on its commas directly: the csv module's reader made for each
    line cost more than the rest of parsing it."""
    if '"' not in line:
        fields = line.rstrip("\r\n")
        return fields.split(",") if fields else []
    return next(csv.reader(io.StringIO(line)), [])


def check_header(path: str, header: Sequence[str], expected: Sequence[str]) -> None:
    header = [h.strip().lstrip(_BOM) for h in header]  # spreadsheets save "CSV UTF-8" with a BOM
    missing = [c for c in expected if c not in header]
    if missing:
        raise DataError(path, 1, missing[0],
                        f"missing column; the header must be {','.join(expected)}")
    if list(header) != list(expected):
        raise DataError(path, 1, None,
                        f"columns must be exactly {','.join(expected)} in this order")


def _fields(path: str, row: int, values: Sequence[str], columns: Sequence[str]) -> List[str]:
    if len(values) != len(columns):
        raise DataError(path, row, None,
                        f"malformed row: expected {len(columns)} fields "
                        f"({','.join(columns)}), found {len(values)}")
    return [v.strip() for v in values]


def _required(path: str, row: int, field: str, value: str) -> str:
    if not value:
        raise DataError(path, row, field, "must not be empty")
    return value


def _integer(path: str, row: int, field: str, value: str, bounds: Tuple[int, int]) -> int:
    if not _INTEGER.fullmatch(value):
        raise DataError(path, row, field, f"must be an integer, got {value!r}")
    number = int(value)
    if not bounds[0] <= number <= bounds[1]:
        raise DataError(path, row, field, f"must be in [{bounds[0]}, {bounds[1]}], got {number}")
    return number


def parse_rating(path: str, row: int, values: Sequence[str]) -> Rating:
    user_id, item_id, rating, timestamp = _fields(path, row, values, RATINGS_COLUMNS)
    if not _NUMBER.fullmatch(_required(path, row, F.RATING, rating)):
        raise DataError(path, row, F.RATING, f"must be a number, got {rating!r}")
    score = float(rating)
    low, high = RATING_RANGE
    if not low <= score <= high:
        raise DataError(path, row, F.RATING, f"must be in [{low:g}, {high:g}], got {rating}")
    return Rating(
        user_id=_required(path, row, F.USER_ID, user_id),
        item_id=_required(path, row, F.ITEM_ID, item_id),
        rating=score,
        timestamp=_integer(path, row, F.TIMESTAMP, timestamp, (0, 2**62)),
    )


def parse_user(path: str, row: int, values: Sequence[str]) -> User:
    user_id, age, gender, occupation, zip_code = _fields(path, row, values, USERS_COLUMNS)
    return User(
        user_id=_required(path, row, F.USER_ID, user_id),
        age=_integer(path, row, F.AGE, age, AGE_RANGE),
        gender=_required(path, row, F.GENDER, gender),
        occupation=_required(path, row, F.OCCUPATION, occupation),
        zip_code=_required(path, row, F.ZIP_CODE, zip_code),
    )


def parse_item(path: str, row: int, values: Sequence[str]) -> Item:
    item_id, title, year, genres = _fields(path, row, values, ITEMS_COLUMNS)
    return Item(
        item_id=_required(path, row, F.ITEM_ID, item_id),
        title=_required(path, row, F.TITLE, title),
        year=_integer(path, row, F.YEAR, year, YEAR_RANGE) if year else 0,
        genres=tuple(g.strip() for g in genres.split(GENRE_SEPARATOR) if g.strip()),
    )


PARSERS = {RATINGS_FILE: parse_rating, USERS_FILE: parse_user, ITEMS_FILE: parse_item}


def read_rows(path: str, columns: Sequence[str]) -> Iterator[Tuple[int, List[str]]]:
    """Yields (line number, fields) of each record of a raw CSV file after checking its header.

    The header is line 1; a record's number is the line it starts on.
    """
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found") from None
    except OSError as error:
        raise DataError(path, None, None, f"cannot be read: {error.strerror or error}") from None
    with handle:
        reader = csv.reader(handle)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(path, None, None, "file is empty; expected a header and rows")
            check_header(path, header, columns)
            empty = True
            start = reader.line_num + 1
            for values in reader:
                if values:
                    empty = False
                    yield start, values
                start = reader.line_num + 1
        except csv.Error as error:
            raise DataError(path, start, None, f"malformed CSV: {error}") from None
        except UnicodeDecodeError:
            raise DataError(path, start, None, "not UTF-8 text") from None
        if empty:
            raise DataError(path, None, None, "file has a header but no rows")


def read_table(folder: str, name: str) -> list:
    """Every record of one raw file of a folder, parsed (Rating, User or Item)."""
    path = os.path.join(folder, name)
    return [PARSERS[name](path, row, values) for row, values in read_rows(path, COLUMNS[name])]


def duplicate_id(path: str, row: int, field: str, key: str, first_row: int) -> DataError:
    return DataError(path, row, field, f"duplicate id {key!r} (first seen in row {first_row})")


def rating_row(rating: Rating) -> list:
    """A record as the row of its file that parses back to it."""
    return [rating.user_id, rating.item_id, f"{rating.rating:g}", rating.timestamp]


def user_row(user: User) -> list:
    return [user.user_id, user.age, user.gender, user.occupation, user.zip_code]


def item_row(item: Item) -> list:
    return [item.item_id, item.title, item.year or "", GENRE_SEPARATOR.join(item.genres)]


def write_csv(path: str, columns: Sequence[str], rows) -> None:
    """Writes rows (sequences of values) under a header, atomically (write aside, then rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    os.replace(tmp, path)
