"""Turns MovieLens-100K into a raw format folder (ratings.csv, users.csv, items.csv).

MovieLens' terms forbid redistributing it, so it is fetched on demand, from one of two copies:
GroupLens' ml-100k.zip (a local folder or zip, or its URL) or the copy inside the recbole==1.2.1
wheel on PyPI, which pip can always reach. Both give the same ids, ratings, timestamps, years
and genre names (GroupLens' spelling), and ratings.csv keeps u.data's line order, on which the
canonical u1..u5 splits depend. Only titles differ: RecBole dropped the "(1995)" suffix.

Usage: python -m data.movielens DEST [--source PATH_OR_URL] [--cache-dir DIR]
"""

import argparse
import os
import posixpath
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from components.features import GENRES as GENRES_COLUMN
from data import spans
from data.raw_format import (
    COLUMNS,
    GENRE_SEPARATOR,
    ITEMS_FILE,
    RATINGS_COLUMNS,
    RATINGS_FILE,
    USERS_COLUMNS,
    USERS_FILE,
    DataError,
    write_csv,
)
from data.validate import validate_folder

# u.item's genre flags in file order, spelled as GroupLens does; RecBole uses the same names.
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western")

GROUPLENS_FILES = ("u.data", "u.user", "u.item")
# u.item: id|title|release date|video release date|IMDb URL|one 0/1 flag per genre.
ITEM_FIELDS = 5 + len(GENRES)

RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL = f"recbole-{RECBOLE_VERSION}-py3-none-any.whl"
RECBOLE_DIR = "recbole/dataset_example/ml-100k/"
RECBOLE_HEADERS = {
    "ml-100k.inter": ("user_id:token", "item_id:token", "rating:float", "timestamp:float"),
    "ml-100k.user": ("user_id:token", "age:token", "gender:token", "occupation:token",
                     "zip_code:token"),
    "ml-100k.item": ("item_id:token", "movie_title:token_seq", "release_year:token",
                     "class:token_seq"),
}

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "movielens-100k")

Row = Tuple[str, ...]
Tables = Dict[str, List[Row]]  # raw file name -> rows in that file's column order


def _records(where: str, data: bytes, encoding: str, sep: str, width: int,
             first_row: int = 1) -> Iterator[Tuple[int, List[str]]]:
    """Yields (line number, fields); splits on "\\n" only, as latin-1 text may hold U+0085."""
    lines = data.decode(encoding).split("\n")
    for row, line in enumerate(lines[first_row - 1:], start=first_row):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) != width:
            raise DataError(where, row, None,
                            f"expected {width} {sep!r}-separated fields, found {len(fields)}")
        yield row, [field.strip() for field in fields]


def _genres(where: str, row: int, names: Iterable[str]) -> str:
    """Joins genre names in GroupLens' order, so both sources write the same string."""
    names = set(names)
    unknown = names.difference(GENRES)
    if unknown:
        raise DataError(where, row, GENRES_COLUMN, f"unknown genre {sorted(unknown)[0]!r}")
    return GENRE_SEPARATOR.join(g for g in GENRES if g in names)


def _grouplens_files(source: str) -> Dict[str, Tuple[str, bytes]]:
    """Reads u.data, u.user and u.item from ml-100k.zip or its unpacked folder."""
    if os.path.isdir(source):
        for folder in (source, os.path.join(source, "ml-100k")):
            paths = [os.path.join(folder, name) for name in GROUPLENS_FILES]
            if all(os.path.isfile(path) for path in paths):
                files = {}
                for name, path in zip(GROUPLENS_FILES, paths):
                    with open(path, "rb") as handle:
                        files[name] = (path, handle.read())
                return files
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            members = archive.namelist()
            found = {name: [m for m in members if posixpath.basename(m) == name]
                     for name in GROUPLENS_FILES}
            if all(len(paths) == 1 for paths in found.values()):
                return {name: (f"{source}:{paths[0]}", archive.read(paths[0]))
                        for name, paths in found.items()}
    raise DataError(source, None, None, "expected ml-100k.zip or its folder, holding one each of "
                    + ", ".join(GROUPLENS_FILES))


def _from_grouplens(source: str) -> Tables:
    files = _grouplens_files(source)
    where, data = files["u.data"]
    ratings = [tuple(f) for _, f in _records(where, data, "latin-1", "\t", len(RATINGS_COLUMNS))]
    where, data = files["u.user"]
    users = [tuple(f) for _, f in _records(where, data, "latin-1", "|", len(USERS_COLUMNS))]
    where, data = files["u.item"]
    items = []
    for row, fields in _records(where, data, "latin-1", "|", ITEM_FIELDS):
        item_id, title, released = fields[:3]
        year = released.rsplit("-", 1)[-1]  # "01-Jan-1995" -> "1995"; empty stays empty
        if year and not year.isdigit():
            raise DataError(where, row, "release date", f"expected DD-Mon-YYYY, got {released!r}")
        flags = fields[5:]
        items.append((item_id, title, year,
                      _genres(where, row, (g for g, flag in zip(GENRES, flags) if flag == "1"))))
    return {RATINGS_FILE: ratings, USERS_FILE: users, ITEMS_FILE: items}


def _recbole_records(wheel: str, archive: zipfile.ZipFile,
                     name: str) -> Iterator[Tuple[str, int, List[str]]]:
    where = f"{wheel}:{RECBOLE_DIR}{name}"
    header = RECBOLE_HEADERS[name]
    try:
        data = archive.read(RECBOLE_DIR + name)
    except KeyError:
        raise DataError(where, None, None, "missing from the wheel") from None
    expected = "\t".join(header)
    if data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r") != expected:
        raise DataError(where, 1, None, f"header must be {expected!r}")
    for row, fields in _records(where, data, "utf-8", "\t", len(header), first_row=2):
        yield where, row, fields


def _from_recbole(wheel: str) -> Tables:
    with zipfile.ZipFile(wheel) as archive:
        ratings = [tuple(f) for _, _, f in _recbole_records(wheel, archive, "ml-100k.inter")]
        users = [tuple(f) for _, _, f in _recbole_records(wheel, archive, "ml-100k.user")]
        items = []
        for where, row, (item_id, title, year, genres) in _recbole_records(
                wheel, archive, "ml-100k.item"):
            # RecBole writes "unkonwn" where GroupLens has no release date (item 267).
            items.append((item_id, title, year if year.isdigit() else "",
                          _genres(where, row, genres.split())))
    return {RATINGS_FILE: ratings, USERS_FILE: users, ITEMS_FILE: items}


def _recbole_wheel(cache_dir: str) -> str:
    path = os.path.join(cache_dir, RECBOLE_WHEEL)
    if not os.path.isfile(path):
        os.makedirs(cache_dir, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--only-binary=:all:", f"recbole=={RECBOLE_VERSION}", "--dest", cache_dir],
                       check=True)
    return path


def _download(url: str, cache_dir: str) -> str:
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "ml-100k.zip"
    path = os.path.join(cache_dir, name)
    if not os.path.isfile(path):
        os.makedirs(cache_dir, exist_ok=True)
        with urllib.request.urlopen(url, timeout=120) as response, \
                open(f"{path}.part", "wb") as handle:
            shutil.copyfileobj(response, handle)
        os.replace(f"{path}.part", path)
    return path


def _is_complete(folder: str) -> bool:
    """The three files, or spans (`recsys ingest` moved the files into span-0)."""
    return (all(os.path.isfile(os.path.join(folder, name)) for name in COLUMNS)
            or spans.is_spanned(folder))


def _write_folder(dest_dir: str, tables: Tables) -> None:
    """Writes and validates the folder aside, then renames it, so dest is never half written."""
    tmp = f"{dest_dir}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)  # and any missing parents
    try:
        for name, rows in tables.items():
            write_csv(os.path.join(tmp, name), COLUMNS[name], rows)
        validate_folder(tmp)
        if os.path.isdir(dest_dir):
            os.rmdir(dest_dir)  # empty, checked by the caller
        os.rename(tmp, dest_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fetch_movielens_100k(dest_dir: str, source: Optional[str] = None,
                         cache_dir: Optional[str] = None) -> str:
    """Writes MovieLens-100K as a raw format folder at dest_dir and returns dest_dir.

    source: None for the copy in the recbole wheel (pip-downloaded into cache_dir), else a path
    or http(s) URL of GroupLens' ml-100k.zip, or the path of its unpacked folder. Does nothing
    when dest_dir already holds the three files or spans; refuses a non-empty folder lacking
    any.
    """
    dest_dir = os.path.normpath(os.fspath(dest_dir))
    if _is_complete(dest_dir):
        return dest_dir
    if os.path.isdir(dest_dir) and os.listdir(dest_dir):
        raise FileExistsError(f"{dest_dir} is not empty but lacks some of "
                              f"{', '.join(COLUMNS)}; remove it or choose another folder")
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    if source is None:
        tables = _from_recbole(_recbole_wheel(cache_dir))
    else:
        source = os.fspath(source)
        if source.startswith(("http://", "https://")):
            source = _download(source, cache_dir)
        tables = _from_grouplens(source)
    _write_folder(dest_dir, tables)
    return dest_dir


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dest", help="folder to write ratings.csv, users.csv and items.csv into")
    parser.add_argument("--source", help="GroupLens ml-100k.zip (path or URL) or its folder; "
                                         "default: the copy in the recbole wheel on PyPI")
    parser.add_argument("--cache-dir", default=None,
                        help=f"where downloads are kept (default {DEFAULT_CACHE_DIR})")
    args = parser.parse_args(argv)
    try:
        print(fetch_movielens_100k(args.dest, args.source, args.cache_dir))
    except DataError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
