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
from pipeline.lock import (
    INGEST_LOCK_FILE,
    LEASE_FILE,
    LOCK_FILE,
    OutputLockedError,
    give_back_lease,
    ingest_lock,
    output_lock,
    take_lease,
)


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


_HOLDER = """
import sys, time
from pipeline.lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(folder, seconds):
    """A process that takes the lock and holds it; returns once it holds it."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder), str(seconds)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_run_killed_holding_the_lock_leaves_it_free_and_the_next_run_is_told(tmp_path):
    process = _holder(tmp_path, 60)
    with pytest.raises(OutputLockedError, match=f"pid {process.pid}"):
        with output_lock(str(tmp_path)):
            pass
    process.kill()
    process.wait()
    cleared = []
    with output_lock(str(tmp_path), on_stale=cleared.append):
        pass
    assert [owner["pid"] for owner in cleared] == [process.pid]


def test_a_lock_file_that_cannot_be_read_is_taken_over(tmp_path, capsys):
    (tmp_path / LOCK_FILE).write_bytes(b'{"host": "a", "pi')  # cut off mid-write
    cleared = []
    with output_lock(str(tmp_path), on_stale=cleared.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert cleared == [{"unreadable": True}]


def test_processes_racing_for_the_lock_hold_it_one_at_a_time(tmp_path):
    """Eight processes try at once, each many times; the log of who held it never overlaps."""
    script = """
import os, sys, time
from pipeline.lock import OutputLockedError, output_lock
held = 0
for _ in range(40):
    try:
        with output_lock(sys.argv[1]):
            with open(sys.argv[2], "a") as log:
                log.write(f"in {os.getpid()}\\n")
            time.sleep(0.002)
            with open(sys.argv[2], "a") as log:
                log.write(f"out {os.getpid()}\\n")
            held += 1
    except OutputLockedError:
        pass
print(held)
"""
    log = tmp_path / "log"
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out"), str(log)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(8)]
    held = sum(int(p.communicate()[0]) for p in processes)
    lines = log.read_text().splitlines()
    assert held > 0 and len(lines) == 2 * held
    for enter, leave in zip(lines[::2], lines[1::2]):  # each "in" followed by its own "out"
        assert enter.split()[0] == "in" and leave == "out " + enter.split()[1]


def test_a_dag_runs_lease_refuses_runs_and_rollbacks_until_given_back(tmp_path, capsys):
    with output_lock(str(tmp_path)):
        take_lease(str(tmp_path), "scheduled__2024-01-02")
    with pytest.raises(OutputLockedError, match="Airflow DAG run scheduled__2024-01-02"):
        with output_lock(str(tmp_path)):
            pass
    for command in (["run", "--data", str(tmp_path / "nowhere")], ["rollback"]):
        assert cli.main([*command, "--output", str(tmp_path)]) == cli.EXIT_LOCKED
        error = capsys.readouterr().err
        assert "Airflow DAG run scheduled__2024-01-02" in error
        assert str(tmp_path / LEASE_FILE) in error  # what to delete if that DAG run is gone
    give_back_lease(str(tmp_path))
    with output_lock(str(tmp_path)):
        pass


def test_a_second_ingest_into_the_same_data_folder_is_refused(tmp_path, capsys):
    from data import synthetic

    data = synthetic.generate(str(tmp_path / "data"), 10, 10, 50, seed=1)
    batch = tmp_path / "batch.csv"
    batch.write_text("user_id,item_id,rating,timestamp\n1,1,4,900000000\n")
    with ingest_lock(data):
        code = cli.main(["ingest", str(batch), "--data", data])
        assert code == cli.EXIT_LOCKED
        assert f"another ingest is using {data}" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(data, INGEST_LOCK_FILE))
    assert sorted(os.listdir(data)) == ["items.csv", "ratings.csv", "users.csv"]
    assert cli.main(["ingest", str(batch), "--data", data]) == 0


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
