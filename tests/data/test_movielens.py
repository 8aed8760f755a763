"""Both MovieLens-100K layouts normalize to the same raw folder.

The fixtures are a few invented rows written in each layout here; no MovieLens data is read or
committed (its terms forbid redistribution).
"""

import csv
import functools
import http.server
import os
import threading
import zipfile

import pytest

from data import movielens
from data.raw_format import ITEMS_FILE, RATINGS_FILE, USERS_FILE, DataError
from data.validate import validate_folder

# u.data's order is deliberately unsorted: it must survive.
RATINGS = [("3", "2", "4", "881250949"), ("1", "1", "5", "874965758"),
           ("2", "4", "3", "878887116"), ("1", "3", "1", "875071561"),
           ("2", "1", "2", "880000000")]
USERS = [("1", "24", "M", "technician", "85711"), ("2", "53", "F", "other", "94043"),
         ("3", "23", "M", "writer", "T8H1N")]
# id, GroupLens title, RecBole title, release date, RecBole year, genres (GroupLens order)
ITEMS = [
    ("1", "Toy Story (1995)", "Toy Story", "01-Jan-1995", "1995",
     ("Animation", "Children's", "Comedy")),
    ("2", "Misérables, Les (1995)", "Misérables, Les", "01-Jan-1995", "1995",
     ("Drama", "Musical")),
    ("3", "unknown", "unkonwn", "", "unkonwn", ("unknown",)),
    ("4", "Blade Runner (1982)", "Blade Runner", "01-Jan-1982", "1982",
     ("Film-Noir", "Sci-Fi")),
]


def _grouplens_texts():
    items = []
    for item_id, title, _, released, _, genres in ITEMS:
        flags = ["1" if g in genres else "0" for g in movielens.GENRES]
        items.append("|".join([item_id, title, released, "", "http://imdb/x"] + flags))
    return {
        "u.data": ("".join("\t".join(r) + "\n" for r in RATINGS)).encode("latin-1"),
        "u.user": ("".join("|".join(u) + "\n" for u in USERS)).encode("latin-1"),
        "u.item": ("".join(line + "\n" for line in items)).encode("latin-1"),
    }


def _write_grouplens_folder(folder):
    os.makedirs(folder)
    for name, data in _grouplens_texts().items():
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
    return str(folder)


def _write_grouplens_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in _grouplens_texts().items():
            archive.writestr(f"ml-100k/{name}", data)
    return str(path)


def _write_recbole_wheel(cache_dir, item_lines=None):
    def table(name, rows):
        lines = ["\t".join(movielens.RECBOLE_HEADERS[name])] + ["\t".join(r) for r in rows]
        return ("\n".join(lines) + "\n").encode("utf-8")

    if item_lines is None:
        # RecBole's genre order does not matter: the output uses GroupLens' order.
        item_lines = [(i, rb_title, year, " ".join(reversed(genres)))
                      for i, _, rb_title, _, year, genres in ITEMS]
    os.makedirs(cache_dir, exist_ok=True)
    with zipfile.ZipFile(os.path.join(cache_dir, movielens.RECBOLE_WHEEL), "w") as wheel:
        wheel.writestr("recbole/__init__.py", "")
        for name, rows in (("ml-100k.inter", RATINGS), ("ml-100k.user", USERS),
                           ("ml-100k.item", item_lines)):
            wheel.writestr(movielens.RECBOLE_DIR + name, table(name, rows))
    return str(cache_dir)


def _read(folder, name):
    with open(os.path.join(folder, name), newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as handle:
        return handle.read()


def test_both_layouts_normalize_to_the_same_folder(tmp_path):
    folder = movielens.fetch_movielens_100k(
        str(tmp_path / "from_folder"), source=_write_grouplens_folder(tmp_path / "ml-100k"))
    zipped = movielens.fetch_movielens_100k(
        str(tmp_path / "from_zip"), source=_write_grouplens_zip(tmp_path / "ml-100k.zip"))
    recbole = movielens.fetch_movielens_100k(
        str(tmp_path / "from_recbole"), cache_dir=_write_recbole_wheel(tmp_path / "cache"))

    for out in (folder, zipped, recbole):
        summary = validate_folder(out)
        assert (summary.ratings, summary.users, summary.items) == (5, 3, 4)
        assert _read(out, RATINGS_FILE)[1:] == [list(r) for r in RATINGS]  # u.data's order
        assert _read(out, USERS_FILE)[1:] == [list(u) for u in USERS]
    for name in (RATINGS_FILE, USERS_FILE):
        assert _bytes(folder, name) == _bytes(zipped, name) == _bytes(recbole, name)
    assert _bytes(folder, ITEMS_FILE) == _bytes(zipped, ITEMS_FILE)

    grouplens_items = _read(folder, ITEMS_FILE)[1:]
    recbole_items = _read(recbole, ITEMS_FILE)[1:]
    assert [r[1] for r in grouplens_items] == [i[1] for i in ITEMS]
    assert [r[1] for r in recbole_items] == [i[2] for i in ITEMS]
    expected = [[i[0], i[4] if i[3] else "", "|".join(i[5])] for i in ITEMS]
    assert [[r[0], r[2], r[3]] for r in grouplens_items] == expected
    assert [[r[0], r[2], r[3]] for r in recbole_items] == expected
    assert grouplens_items[3][3] == "Film-Noir|Sci-Fi"


def test_complete_destination_is_left_alone(tmp_path):
    dest = movielens.fetch_movielens_100k(
        str(tmp_path / "out"), source=_write_grouplens_folder(tmp_path / "ml-100k"))
    before = _bytes(dest, RATINGS_FILE)
    assert movielens.fetch_movielens_100k(dest, source=str(tmp_path / "missing")) == dest
    assert _bytes(dest, RATINGS_FILE) == before
    assert sorted(os.listdir(tmp_path)) == ["ml-100k", "out"]  # no temp folder left behind


def test_a_folder_turned_into_spans_by_ingest_is_complete(tmp_path):
    dest = movielens.fetch_movielens_100k(
        str(tmp_path / "out"), source=_write_grouplens_folder(tmp_path / "ml-100k"))
    os.rename(dest, str(tmp_path / "span-0"))
    os.makedirs(dest)
    os.rename(str(tmp_path / "span-0"), os.path.join(dest, "span-0"))
    assert movielens.fetch_movielens_100k(dest, source=str(tmp_path / "missing")) == dest
    assert os.listdir(dest) == ["span-0"]  # nothing fetched over the spans


def test_refuses_a_foreign_non_empty_destination(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        movielens.fetch_movielens_100k(str(dest), source=_write_grouplens_folder(tmp_path / "s"))
    assert os.listdir(dest) == ["notes.txt"]


def test_broken_source_names_file_and_row_and_writes_nothing(tmp_path):
    bad_items = [(i, rb_title, year, " ".join(genres).replace("Sci-Fi", "SciFi"))
                 for i, _, rb_title, _, year, genres in ITEMS]
    cache = _write_recbole_wheel(tmp_path / "cache", item_lines=bad_items)
    with pytest.raises(DataError) as error:
        movielens.fetch_movielens_100k(str(tmp_path / "out"), cache_dir=cache)
    assert error.value.path.endswith("ml-100k.item") and error.value.row == 5
    assert "SciFi" in error.value.rule
    assert sorted(os.listdir(tmp_path)) == ["cache"]

    source = _write_grouplens_folder(tmp_path / "ml-100k")
    with open(os.path.join(source, "u.user"), "a", encoding="latin-1") as handle:
        handle.write("4|30|M\n")
    with pytest.raises(DataError) as error:
        movielens.fetch_movielens_100k(str(tmp_path / "out"), source=source)
    assert error.value.path.endswith("u.user") and error.value.row == 4


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    """Serves tmp_path/www on localhost, standing in for GroupLens' web site."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_source_is_downloaded_once(tmp_path, http_folder):
    root, url = http_folder
    _write_grouplens_zip(root / "ml-100k.zip")
    cache = tmp_path / "cache"
    dest = movielens.fetch_movielens_100k(str(tmp_path / "out"), source=f"{url}/ml-100k.zip",
                                          cache_dir=str(cache))
    assert validate_folder(dest).ratings == len(RATINGS)
    assert os.listdir(cache) == ["ml-100k.zip"]


def test_main_writes_the_folder(tmp_path, capsys):
    source = _write_grouplens_zip(tmp_path / "ml-100k.zip")
    movielens.main([str(tmp_path / "out"), "--source", source])
    assert capsys.readouterr().out.strip() == str(tmp_path / "out")
    assert validate_folder(str(tmp_path / "out")).items == len(ITEMS)
