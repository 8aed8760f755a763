"""Bad raw data is rejected with one clear, exact error: file, row, field and the rule broken.

Each case generates a small synthetic folder, corrupts one file in one precise way and checks
the DataError from validate_folder; a representative subset also goes through `recsys run`,
which must exit 2 with one line on stderr and write nothing.
"""

import csv
import logging
import os

import pytest

from components import features as F
from data import synthetic
from data.raw_format import ITEMS_FILE, RATINGS_FILE, USERS_FILE, DataError
from data.validate import FolderSummary, validate_folder
from pipeline import cli

USERS, ITEMS, RATINGS = 30, 40, 400
FILES = (RATINGS_FILE, USERS_FILE, ITEMS_FILE)


@pytest.fixture
def folder(tmp_path):
    return synthetic.generate(str(tmp_path / "data"), num_users=USERS, num_items=ITEMS,
                              num_ratings=RATINGS, seed=1)


def _path(folder, name):
    return os.path.join(folder, name)


def _read(folder, name):
    with open(_path(folder, name), newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write(folder, name, rows):
    with open(_path(folder, name), "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _set(name, line, column, value):
    """Mutation: the field `column` of CSV line `line` (header is line 1) becomes `value`."""

    def mutate(folder):
        rows = _read(folder, name)
        rows[line - 1][rows[0].index(column)] = value
        _write(folder, name, rows)

    return mutate


def _drop_column(name, column):
    def mutate(folder):
        rows = _read(folder, name)
        index = rows[0].index(column)
        _write(folder, name, [row[:index] + row[index + 1:] for row in rows])

    return mutate


def _swap_columns(name, first, second):
    def mutate(folder):
        rows = _read(folder, name)
        i, j = rows[0].index(first), rows[0].index(second)
        for row in rows:
            row[i], row[j] = row[j], row[i]
        _write(folder, name, rows)

    return mutate


def _resize_row(name, line, extra):
    """Mutation: CSV line `line` gets `extra` more fields (or loses -extra fields)."""

    def mutate(folder):
        rows = _read(folder, name)
        row = rows[line - 1]
        rows[line - 1] = row + ["x"] * extra if extra > 0 else row[:extra]
        _write(folder, name, rows)

    return mutate


def _copy_id(name, line, from_line):
    """Mutation: the id (first column) of line `line` becomes the id of line `from_line`."""

    def mutate(folder):
        rows = _read(folder, name)
        rows[line - 1][0] = rows[from_line - 1][0]
        _write(folder, name, rows)

    return mutate


def _remove(name):
    def mutate(folder):
        os.remove(_path(folder, name))

    return mutate


def _empty(name):
    def mutate(folder):
        open(_path(folder, name), "wb").close()

    return mutate


def _header_only(name):
    def mutate(folder):
        _write(folder, name, _read(folder, name)[:1])

    return mutate


# (id, mutation, file, row, field, rule substring); row and field are None where the error is
# about the whole file.
CASES = [
    *[pytest.param(_remove(name), name, None, None, "file not found", id=f"missing-{name}")
      for name in FILES],
    *[pytest.param(_empty(name), name, None, None, "file is empty", id=f"empty-{name}")
      for name in FILES],
    *[pytest.param(_header_only(name), name, None, None, "header but no rows",
                   id=f"header-only-{name}") for name in FILES],
    pytest.param(_drop_column(RATINGS_FILE, F.RATING), RATINGS_FILE, 1, F.RATING,
                 "missing column", id="missing-column-ratings-rating"),
    pytest.param(_drop_column(USERS_FILE, F.AGE), USERS_FILE, 1, F.AGE, "missing column",
                 id="missing-column-users-age"),
    pytest.param(_drop_column(ITEMS_FILE, F.TITLE), ITEMS_FILE, 1, F.TITLE, "missing column",
                 id="missing-column-items-title"),
    pytest.param(_swap_columns(USERS_FILE, F.GENDER, F.OCCUPATION), USERS_FILE, 1, None,
                 "in this order", id="columns-out-of-order-users"),
    pytest.param(_resize_row(RATINGS_FILE, 9, 1), RATINGS_FILE, 9, None,
                 "malformed row: expected 4 fields", id="malformed-ratings-extra-field"),
    pytest.param(_resize_row(USERS_FILE, 5, -1), USERS_FILE, 5, None,
                 "malformed row: expected 5 fields", id="malformed-users-missing-field"),
    pytest.param(_resize_row(ITEMS_FILE, 3, 2), ITEMS_FILE, 3, None,
                 "malformed row: expected 4 fields", id="malformed-items-extra-fields"),
    pytest.param(_set(RATINGS_FILE, 12, F.RATING, "five"), RATINGS_FILE, 12, F.RATING,
                 "must be a number, got 'five'", id="rating-non-numeric"),
    pytest.param(_set(RATINGS_FILE, 12, F.RATING, ""), RATINGS_FILE, 12, F.RATING,
                 "must not be empty", id="rating-empty"),
    *[pytest.param(_set(RATINGS_FILE, 40, F.RATING, value), RATINGS_FILE, 40, F.RATING,
                   f"must be in [1, 5], got {value}", id=f"rating-out-of-range-{value}")
      for value in ("0", "6", "-0.5", "5.01")],
    *[pytest.param(_set(RATINGS_FILE, 40, F.RATING, value), RATINGS_FILE, 40, F.RATING,
                   f"must be a number, got {value!r}", id=f"rating-not-a-number-{value}")
      for value in ("nan", "-inf", "0_1", "٣")],
    *[pytest.param(_set(USERS_FILE, 7, F.AGE, value), USERS_FILE, 7, F.AGE,
                   f"must be an integer, got {value!r}", id=f"age-non-integer-{value}")
      for value in ("thirty", "25.5", "")],
    *[pytest.param(_set(USERS_FILE, 7, F.AGE, value), USERS_FILE, 7, F.AGE,
                   f"must be in [1, 120], got {value}", id=f"age-out-of-range-{value}")
      for value in ("0", "121", "-3")],
    *[pytest.param(_set(RATINGS_FILE, 20, F.TIMESTAMP, value), RATINGS_FILE, 20, F.TIMESTAMP,
                   f"must be an integer, got {value!r}", id=f"timestamp-non-integer-{value}")
      for value in ("876059720.5", "yesterday", "")],
    pytest.param(_set(RATINGS_FILE, 20, F.TIMESTAMP, "-1"), RATINGS_FILE, 20, F.TIMESTAMP,
                 "must be in [0, ", id="timestamp-negative"),
    pytest.param(_set(ITEMS_FILE, 11, F.YEAR, "1990s"), ITEMS_FILE, 11, F.YEAR,
                 "must be an integer, got '1990s'", id="year-non-integer"),
    pytest.param(_set(ITEMS_FILE, 11, F.YEAR, "1799"), ITEMS_FILE, 11, F.YEAR,
                 "must be in [1800, 2100], got 1799", id="year-out-of-range"),
    *[pytest.param(_set(name, line, field, value), name, line, field, "must not be empty",
                   id=f"empty-{name}-{field}{'-blank' if value else ''}")
      for name, line, field, value in (
          (RATINGS_FILE, 15, F.USER_ID, ""),
          (RATINGS_FILE, 15, F.USER_ID, "   "),
          (RATINGS_FILE, 15, F.ITEM_ID, ""),
          (USERS_FILE, 8, F.USER_ID, ""),
          (USERS_FILE, 8, F.GENDER, ""),
          (USERS_FILE, 8, F.OCCUPATION, ""),
          (USERS_FILE, 8, F.ZIP_CODE, ""),
          (ITEMS_FILE, 6, F.ITEM_ID, ""),
          (ITEMS_FILE, 6, F.TITLE, ""),
      )],
    pytest.param(_set(RATINGS_FILE, 33, F.USER_ID, "999"), RATINGS_FILE, 33, F.USER_ID,
                 "user '999' is not in users.csv", id="unknown-user"),
    pytest.param(_set(RATINGS_FILE, 33, F.ITEM_ID, "999"), RATINGS_FILE, 33, F.ITEM_ID,
                 "item '999' is not in items.csv", id="unknown-item"),
    pytest.param(_copy_id(USERS_FILE, 10, 4), USERS_FILE, 10, F.USER_ID,
                 "duplicate id '3' (first seen in row 4)", id="duplicate-user-id"),
    pytest.param(_copy_id(ITEMS_FILE, 25, 2), ITEMS_FILE, 25, F.ITEM_ID,
                 "duplicate id '1' (first seen in row 2)", id="duplicate-item-id"),
]


def _expected_line(path, row, field, rule):
    where = path if row is None else f"{path}, row {row}"
    if field is not None:
        where += f", field '{field}'"
    return f"{where}: {rule}"


def _check(error, path, row, field, rule):
    assert (error.path, error.row, error.field) == (path, row, field)
    assert rule in error.rule
    assert str(error) == _expected_line(path, row, field, error.rule)


def test_good_folder_passes_with_counts(folder):
    assert validate_folder(folder) == FolderSummary(ratings=RATINGS, users=USERS, items=ITEMS)


@pytest.mark.parametrize("mutate, name, row, field, rule", CASES)
def test_bad_input_is_named_exactly(folder, mutate, name, row, field, rule):
    mutate(folder)
    with pytest.raises(DataError) as caught:
        validate_folder(folder)
    _check(caught.value, _path(folder, name), row, field, rule)


@pytest.mark.parametrize("side_file, column", [(USERS_FILE, F.USER_ID),
                                               (ITEMS_FILE, F.ITEM_ID)])
def test_rating_of_a_removed_side_row_is_named(folder, side_file, column):
    """Removing a user (item) from its side table fails on the first rating that uses it."""
    rows = _read(folder, side_file)
    removed = rows[5][0]
    _write(folder, side_file, rows[:5] + rows[6:])
    ratings = _read(folder, RATINGS_FILE)
    index = ratings[0].index(column)
    line = next(n for n, r in enumerate(ratings, start=1) if n > 1 and r[index] == removed)
    with pytest.raises(DataError) as caught:
        validate_folder(folder)
    _check(caught.value, _path(folder, RATINGS_FILE), line, column,
           f"{column.split('_')[0]} {removed!r} is not in {side_file}")


def _run_cli(folder, out, monkeypatch):
    """`recsys run` in process; restores the logging and environment state main() changes."""
    for key in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)
    root, absl = logging.getLogger(), logging.getLogger("absl")
    handlers, level, propagate = list(root.handlers), root.level, absl.propagate
    try:
        return cli.main(["run", "--data", folder, "--output", out])
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        absl.propagate = propagate


CLI_CASES = [
    pytest.param(_remove(RATINGS_FILE), RATINGS_FILE, None, None, "file not found",
                 id="missing-file"),
    pytest.param(_empty(ITEMS_FILE), ITEMS_FILE, None, None, "file is empty", id="empty-file"),
    pytest.param(_header_only(USERS_FILE), USERS_FILE, None, None, "header but no rows",
                 id="header-only"),
    pytest.param(_drop_column(USERS_FILE, F.AGE), USERS_FILE, 1, F.AGE, "missing column",
                 id="missing-column"),
    pytest.param(_resize_row(RATINGS_FILE, 9, 1), RATINGS_FILE, 9, None, "malformed row",
                 id="malformed-row"),
    pytest.param(_set(RATINGS_FILE, 12, F.RATING, "five"), RATINGS_FILE, 12, F.RATING,
                 "must be a number, got 'five'", id="bad-rating"),
    pytest.param(_set(RATINGS_FILE, 40, F.RATING, "6"), RATINGS_FILE, 40, F.RATING,
                 "must be in [1, 5], got 6", id="out-of-range-rating"),
    pytest.param(_set(USERS_FILE, 8, F.GENDER, ""), USERS_FILE, 8, F.GENDER,
                 "must not be empty", id="empty-gender"),
    pytest.param(_set(RATINGS_FILE, 33, F.USER_ID, "999"), RATINGS_FILE, 33, F.USER_ID,
                 "user '999' is not in users.csv", id="unknown-user"),
    pytest.param(_copy_id(ITEMS_FILE, 25, 2), ITEMS_FILE, 25, F.ITEM_ID,
                 "duplicate id '1' (first seen in row 2)", id="duplicate-id"),
]


@pytest.mark.parametrize("mutate, name, row, field, rule", CLI_CASES)
def test_cli_run_exits_2_with_one_line_and_writes_nothing(
        tmp_path, folder, capsys, monkeypatch, mutate, name, row, field, rule):
    mutate(folder)
    before = sorted(os.listdir(folder))
    out = str(tmp_path / "out")
    code = _run_cli(folder, out, monkeypatch)
    captured = capsys.readouterr()
    assert code == cli.EXIT_DATA_ERROR == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("error: ")
    assert line.startswith(f"error: {_expected_line(_path(folder, name), row, field, '')}")
    assert rule in line
    if row is not None:
        assert f", row {row}" in line
    if field is not None:
        assert f", field '{field}'" in line
    assert captured.out == ""
    assert not os.path.exists(out)
    assert sorted(os.listdir(folder)) == before  # nothing written into the data folder either


def _replace_bytes(name, old, new):
    def mutate(folder):
        with open(_path(folder, name), "rb") as handle:
            data = handle.read()
        assert old in data
        with open(_path(folder, name), "wb") as handle:
            handle.write(data.replace(old, new, 1))

    return mutate


@pytest.mark.parametrize("mutate", [
    pytest.param(_replace_bytes(USERS_FILE, b"educator", b"edu\x00cator"), id="nul-byte"),
    pytest.param(_replace_bytes(ITEMS_FILE, b"Synthetic Movie 7,", b"Synth\xe9tic Movie 7,"),
                 id="not-utf8"),
    pytest.param(_replace_bytes(ITEMS_FILE, b"Synthetic Movie 7,", b"x" * 200_000 + b","),
                 id="field-over-csv-limit"),
])
def test_unreadable_bytes_are_a_data_error_naming_the_file(folder, mutate):
    mutate(folder)
    with pytest.raises(DataError) as caught:
        validate_folder(folder)
    assert caught.value.path in {_path(folder, name) for name in FILES}


def test_rows_are_numbered_by_the_line_they_start_on(folder):
    rows = _read(folder, ITEMS_FILE)
    rows[2][rows[0].index(F.TITLE)] = "Two\nLines"  # record 3 spans lines 3 and 4
    rows[5][rows[0].index(F.YEAR)] = "1990s"  # record 6 starts on line 7
    _write(folder, ITEMS_FILE, rows)
    with pytest.raises(DataError) as caught:
        validate_folder(folder)
    _check(caught.value, _path(folder, ITEMS_FILE), 7, F.YEAR, "must be an integer")


@pytest.mark.parametrize("value", ["875_915_765", "٣", "1e9", " "])
def test_integers_are_plain_ascii_digits(folder, value):
    _set(RATINGS_FILE, 5, F.TIMESTAMP, value)(folder)
    with pytest.raises(DataError) as caught:
        validate_folder(folder)
    assert (caught.value.row, caught.value.field) == (5, F.TIMESTAMP)


def test_a_utf8_bom_from_a_spreadsheet_is_accepted(folder):
    with open(_path(folder, USERS_FILE), "rb") as handle:
        data = handle.read()
    with open(_path(folder, USERS_FILE), "wb") as handle:
        handle.write(b"\xef\xbb\xbf" + data)
    assert validate_folder(folder) == FolderSummary(ratings=RATINGS, users=USERS, items=ITEMS)
