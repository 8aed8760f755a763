"""Malformed files, generated: the raw-format readers and `recsys ingest` either accept a file
correctly or refuse it with a DataError that names it, in one line per problem; never another
exception, and a refused batch writes nothing. Then every command-line flag given values out of
its range: exit 2, one line naming the flag, nothing written."""

import hashlib
import os
import random

import pytest

from data import ingest, synthetic
from data import raw_format as R
from data.validate import validate_folder
from pipeline import cli

FILES = (R.RATINGS_FILE, R.USERS_FILE, R.ITEMS_FILE)
SEEDS = range(60)


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("clean")), 20, 25, 200, seed=3)


def _bytes(folder, name):
    with open(os.path.join(folder, name), "rb") as handle:
        return handle.read()


def _malformed(content: bytes, seed: int) -> bytes:
    """One of the shapes upstream systems send, chosen and placed by the seed."""
    pick = random.Random(seed)
    lines = content.split(b"\n")
    at = pick.randrange(1, max(2, len(lines) - 1))
    shapes = [
        lambda: bytes(pick.randrange(256) for _ in range(pick.randrange(1, 4000))),  # garbage
        lambda: b"\xef\xbb\xbf" + content,  # a spreadsheet's BOM
        lambda: content.replace(b"\n", b"\r\n"),  # CRLF
        lambda: b"\n".join(lines[:at] + [b'"a, quoted\nfield",' + lines[at]] + lines[at + 1:]),
        lambda: b"\n".join(lines[:at] + [lines[at] + b"x" * pick.choice([10**4, 2 * 10**5])]
                           + lines[at + 1:]),  # a huge field
        lambda: b"",  # empty
        lambda: lines[0] + b"\n",  # header only
        lambda: b"\n".join([lines[0] + b",extra"] + [line + b",1" for line in lines[1:]
                                                       if line]),  # an unknown column
        lambda: b"\n".join(b",".join(line.split(b",")[::-1]) for line in lines),  # reordered
        lambda: content.replace(b"e", b"\xe9", 3),  # Latin-1, not UTF-8
        lambda: content[:pick.randrange(len(content))],  # cut off anywhere
        lambda: bytes(b ^ (1 << pick.randrange(8)) if pick.random() < 0.01 else b
                      for b in content),  # bit flips
        lambda: content.replace(b",", b";"),  # another separator
        lambda: b"\n".join(lines[:at] + [b"\x00" * 5 + lines[at]] + lines[at + 1:]),  # NULs
    ]
    return shapes[seed % len(shapes)]()


def _refusal_is_clear(error: R.DataError, folder: str) -> None:
    message = str(error)
    assert message.startswith(folder), message  # names the file (or the folder's)
    assert "\n" not in message, message


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("seed", SEEDS)
def test_validation_accepts_or_names_the_file_and_nothing_else_escapes(
        clean_folder, tmp_path, name, seed):
    folder = tmp_path / "data"
    folder.mkdir()
    for other in FILES:
        (folder / other).write_bytes(_bytes(clean_folder, other))
    (folder / name).write_bytes(_malformed(_bytes(clean_folder, name), seed))
    try:
        summary = validate_folder(str(folder))
    except R.DataError as error:
        _refusal_is_clear(error, str(folder))
        return
    # Accepted: every row of the file parses, and the counts are the rows'.
    rows = list(R.read_rows(str(folder / name), R.COLUMNS[name]))
    assert {R.RATINGS_FILE: summary.ratings, R.USERS_FILE: summary.users,
            R.ITEMS_FILE: summary.items}[name] == len(rows)


def _tree(folder):
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


@pytest.fixture
def spanned(clean_folder, tmp_path):
    data = tmp_path / "spanned"
    data.mkdir()
    for name in FILES:
        (data / name).write_bytes(_bytes(clean_folder, name))
    return str(data)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("seed", SEEDS[::3])
def test_ingest_accepts_or_refuses_whole_and_writes_nothing(
        clean_folder, spanned, tmp_path, name, seed):
    batch = {}
    for kind in FILES:
        if kind == R.RATINGS_FILE or kind == name:
            path = tmp_path / f"batch-{kind}"
            content = _bytes(clean_folder, kind)
            path.write_bytes(_malformed(content, seed) if kind == name else content)
            batch[kind] = str(path)
    before = _tree(spanned)
    try:
        result = ingest.ingest(spanned, batch[R.RATINGS_FILE], batch.get(R.USERS_FILE),
                               batch.get(R.ITEMS_FILE))
    except R.DataError as error:
        assert str(error).startswith(tuple(batch.values()) + (spanned,)), str(error)
        assert "Traceback" not in str(error)
        assert _tree(spanned) == before  # nothing written, not even span 0
        return
    assert os.path.isdir(result.folder) and result.ratings > 0
    assert len(R.read_table(result.folder, R.RATINGS_FILE)) == result.ratings


def test_the_cli_refuses_a_garbage_batch_with_exit_2_and_writes_nothing(spanned, tmp_path,
                                                                        capsys):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(5000)))
    before = _tree(spanned)
    assert cli.main(["ingest", str(garbage), "--data", spanned]) == cli.EXIT_DATA_ERROR
    error = capsys.readouterr().err
    assert error.startswith(f"error: {garbage}") and "Traceback" not in error
    assert _tree(spanned) == before


BAD_FLAGS = [
    (["recommend", "--user", "1", "-k", "0"], "-k"),
    (["recommend", "--user", "1", "-k", "-3"], "-k"),
    (["recommend", "--user", "1", "-k", "ten"], "-k"),
    (["recommend", "--likes", "50:9"], "--likes"),
    (["recommend", "--likes", ","], "--likes"),
    (["recommend", "--user", "1", "--years", "1999-1990"], "--years"),
    (["recommend", "--user", "1", "--years", "nineties"], "--years"),
    (["recommend", "--user", "1", "--genres", ","], "--genres"),
    (["recommend", "--user", "1", "--age", "old"], "--age"),
    (["similar", "--item", "1", "-k", "0"], "-k"),
    (["audience", "--item", "1", "-k", "1.5"], "-k"),
    (["run", "--watch", "--interval", "-1"], "--interval"),
    (["run", "--watch", "--interval", "0"], "--interval"),
    (["run", "--watch", "--interval", "nan"], "--interval"),
    (["run", "--watch", "--interval", "inf"], "--interval"),
    (["serve", "--port", "0"], "--port"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--poll", "-0.5"], "--poll"),
    (["serve", "--threads", "0"], "--threads"),
    (["report", "--run", "0"], "--run"),
    (["report", "--run", "last"], "--run"),
    (["rollback", "1", "2"], "unrecognized arguments"),
    (["run", "--no-such-flag"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv, flag", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_every_flag_out_of_range_exits_2_naming_it_and_writes_nothing(
        tmp_path, capsys, argv, flag):
    output = tmp_path / "output"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--output", str(output)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("recsys") and "error:" in error[-1] and flag in error[-1]
    assert not output.exists()
