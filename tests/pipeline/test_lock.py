"""One run per output folder; --watch runs only when something changed."""

import json
import os
import socket
import subprocess
import sys

import pytest

from components.example_gen.example_count import ExamplesLostError
from data import raw_format as R
from pipeline import cli, run_record
from pipeline.lock import LOCK_FILE, OutputLockedError, output_lock


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path, capsys):
    with output_lock(str(tmp_path)):
        with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"):
            with output_lock(str(tmp_path)):
                pass
        code = cli.main(["run", "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path)])
        assert code == cli.EXIT_LOCKED
        assert "another run is using" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / LOCK_FILE)  # released


def test_a_stale_lock_of_a_killed_run_is_cleared(tmp_path):
    pid = _dead_pid()
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": pid, "started": "earlier"}))
    cleared = []
    with output_lock(str(tmp_path), on_stale=cleared.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert [owner["pid"] for owner in cleared] == [pid]


def test_the_lock_is_released_when_the_run_fails_and_a_folder_it_made_is_removed(tmp_path):
    with pytest.raises(ValueError):
        with output_lock(str(tmp_path)):
            raise ValueError("boom")
    assert not os.path.exists(tmp_path / LOCK_FILE)
    with pytest.raises(ValueError):
        with output_lock(str(tmp_path / "new")):
            raise ValueError("refused before writing anything")
    assert not os.path.exists(tmp_path / "new")


@pytest.mark.parametrize("failure", [
    R.DataError("span-2/ratings.csv", 3, "rating", "must be in [1, 5]"),
    ExamplesLostError("span-2/ratings.csv", 10, 9)])
def test_watch_runs_on_change_skips_failed_data_until_it_changes_and_stops_on_ctrl_c(
        tmp_path, monkeypatch, failure):
    keys = iter(["a", "a", "b", "b", "c"])
    runs = []

    def run_once(config):
        runs.append(config_key[0])
        if config_key[0] == "b":
            raise failure
        record = json.dumps({"run_key": config_key[0]})
        (tmp_path / "out" / run_record.LAST_RUN_FILE).write_text(record)
        return 0

    config_key = [None]

    def run_key(config):
        config_key[0] = next(keys)
        return config_key[0]

    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_once", run_once)
    monkeypatch.setattr(run_record, "run_key", run_key)
    monkeypatch.setattr(cli, "_sleep", sleep)
    code = cli.main(["run", "--watch", "--interval", "7", "--data", str(tmp_path),
                     "--output", str(tmp_path / "out")])
    assert code == 0
    assert runs == ["a", "b", "c"] and sleeps == [7.0] * 5
