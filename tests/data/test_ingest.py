"""`recsys ingest`: batches become spans whole, or not at all."""

import csv
import errno
import os

import pytest

from data import ingest as I
from data import raw_format as R
from data import spans as S
from data import synthetic
from pipeline import cli

HEADER = ",".join(R.RATINGS_COLUMNS)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _listing(folder):
    return sorted((root, tuple(sorted(files))) for root, _, files in os.walk(folder))


def _table(folder, name):
    with open(os.path.join(folder, name), newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def data_dir(tmp_path):
    return synthetic.generate(str(tmp_path / "data"), 30, 20, 300, seed=1)


@pytest.fixture
def batch(tmp_path):
    return _write(tmp_path / "batch.csv", [HEADER, "1,2,5,900000000", "2,3,4,900000001"])


@pytest.fixture
def new_people(tmp_path):
    users = _write(tmp_path / "users.csv", [",".join(R.USERS_COLUMNS),
                                            "31,40,F,writer,10001", "1,99,M,educator,89753"])
    items = _write(tmp_path / "items.csv", [",".join(R.ITEMS_COLUMNS),
                                            "21,New Movie,2026,Drama|Comedy"])
    return users, items


def test_a_good_batch_becomes_the_next_span_and_the_flat_folder_span_zero(
        data_dir, tmp_path, new_people):
    batch = _write(tmp_path / "batch.csv", [HEADER, "1,2,5,900000000", "31,21,4,900000001",
                                            "2,21,3,900000002"])
    before = {name: open(os.path.join(data_dir, name)).read() for name in R.COLUMNS}
    result = I.ingest(data_dir, batch, *new_people)
    assert [n for n, _ in S.spans(data_dir)] == [0, 1] and result.span == 1
    assert not any(os.path.exists(os.path.join(data_dir, name)) for name in R.COLUMNS)
    for name, text in before.items():  # span 0 is the folder's own files, unchanged
        assert open(os.path.join(data_dir, "span-0", name)).read() == text
    assert (result.ratings, result.new_users, result.changed_users, result.new_items,
            result.changed_items, result.quarantined) == (3, 1, 1, 1, 0, 0)
    span = os.path.join(data_dir, "span-1")
    assert [row[:2] for row in _table(span, R.RATINGS_FILE)[1:]] == [
        ["1", "2"], ["31", "21"], ["2", "21"]]
    users = {row[0]: row for row in _table(span, R.USERS_FILE)[1:]}
    assert len(users) == 31 and users["1"][1] == "99" and users["31"][3] == "writer"
    old_users = {row[0]: row for row in _table(os.path.join(data_dir, "span-0"),
                                               R.USERS_FILE)[1:]}
    assert old_users["1"][1] != "99"  # history is not rewritten
    assert S.manifest(span)["ratings"] == 3


def test_the_same_batch_twice_is_refused_by_content(data_dir, batch, new_people):
    I.ingest(data_dir, batch, *new_people)
    listing = _listing(data_dir)
    with pytest.raises(I.DuplicateBatchError, match="already ingested as span 1"):
        I.ingest(data_dir, batch, *new_people)
    assert _listing(data_dir) == listing


def test_bad_rows_reject_the_whole_batch_listing_each_row(data_dir, tmp_path):
    batch = _write(tmp_path / "bad.csv", [HEADER, "1,2,5,900000000", "1,3,9,900000001",
                                          "77,2,4,900000002", "1,4,4,yesterday"])
    listing = _listing(data_dir)
    with pytest.raises(I.BatchRejectedError) as caught:
        I.ingest(data_dir, batch)
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (3, "rating"), (4, "user_id"), (5, "timestamp")]
    assert "bad.csv, row 3, field 'rating'" in str(caught.value)
    assert "3 bad row(s)" in str(caught.value)
    assert _listing(data_dir) == listing  # nothing written, still one flat folder


def test_quarantine_ingests_the_good_rows_and_keeps_the_bad_with_reasons(data_dir, tmp_path):
    users = _write(tmp_path / "users.csv", [",".join(R.USERS_COLUMNS), "31,old,F,writer,1"])
    batch = _write(tmp_path / "bad.csv", [HEADER, "1,2,5,900000000", "1,3,9,900000001",
                                          "31,2,4,900000002"])
    result = I.ingest(data_dir, batch, users, quarantine=True)
    assert (result.ratings, result.quarantined, result.new_users) == (1, 3, 0)
    quarantined = _table(result.folder, I.QUARANTINE_FILE)
    assert quarantined[0] == list(I.QUARANTINE_COLUMNS)
    reasons = {(os.path.basename(row[0]), row[1], row[2]) for row in quarantined[1:]}
    assert reasons == {("users.csv", "2", "age"), ("bad.csv", "3", "rating"),
                       ("bad.csv", "4", "user_id")}  # a bad user's ratings follow it
    assert len(_table(result.folder, R.RATINGS_FILE)) == 2


def test_a_full_disk_mid_ingest_leaves_no_span_nor_staging_and_the_next_ingest_succeeds(
        data_dir, batch, tmp_path, monkeypatch, capsys):
    I.ingest(data_dir, batch)
    second = _write(tmp_path / "second.csv", [HEADER, "3,4,2,900000010"])
    write_csv = R.write_csv

    def full_on_ratings(path, columns, rows):
        if os.path.basename(path) == R.RATINGS_FILE:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        write_csv(path, columns, rows)

    monkeypatch.setattr(R, "write_csv", full_on_ratings)
    with pytest.raises(OSError, match="No space left"):
        I.ingest(data_dir, second)
    assert [n for n, _ in S.spans(data_dir)] == [0, 1]  # no half span 2
    assert not [n for n in os.listdir(data_dir) if n.startswith(S.TEMP_PREFIX)]
    assert cli.main(["ingest", second, "--data", data_dir]) == cli.EXIT_NO_SPACE
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: no space left on device")
    monkeypatch.setattr(R, "write_csv", write_csv)
    assert I.ingest(data_dir, second).span == 2


def test_a_folder_that_is_not_raw_data_is_refused(tmp_path, batch):
    with pytest.raises(R.DataError, match="not a raw data folder"):
        I.ingest(str(tmp_path), batch)


def test_cli_ingest_prints_the_span_and_exits_non_zero_on_a_bad_batch(
        data_dir, batch, tmp_path, capsys):
    assert cli.main(["ingest", batch, "--data", data_dir]) == 0
    assert "Span 1 written" in capsys.readouterr().out
    bad = _write(tmp_path / "bad.csv", [HEADER, "1,2,0,900000000"])
    assert cli.main(["ingest", bad, "--data", data_dir]) == cli.EXIT_DATA_ERROR
    error = capsys.readouterr().err
    assert "bad.csv, row 2, field 'rating'" in error and "must be in [1, 5]" in error
    assert [n for n, _ in S.spans(data_dir)] == [0, 1]
