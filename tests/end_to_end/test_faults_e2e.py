"""Faults through the real pipeline: a run SIGKILLed in the Trainer, examples damaged on disk,
a damaged serving version and metadata database, a disk that fills during the push. After
each, what is served is complete and blessed, and the next run completes on every span.
`make bench-faults` (bench/faults.py) runs every component's kill and the rest of the table."""

import errno
import os
import shutil
import subprocess
import time

import pytest

from bench.faults import (
    CONFIG,
    RECSYS,
    RunWatcher,
    _shards,
    _truncate,
    served_check,
    trained_spans,
)
from bench.faults import World as _World
from components.pusher import versions as pusher_versions
from data import ingest, synthetic
from pipeline import cli
from pipeline.server.versions import ModelVersions


class World(_World):
    """bench.faults' world, its commands run in this process where no kill is needed."""

    def cli(self, *command):
        return cli.main([*command, *self.args()])

    def ingest_next(self, seed):
        ingest.ingest(self.data, self.batch_file(seed))

    def versions(self):
        return pusher_versions.numbered_versions(os.path.join(self.output, "serving"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = World(str(tmp_path_factory.mktemp("faults")))
    synthetic.generate(world.data, 200, 150, 8000, seed=5)
    with open(world.config, "w") as handle:
        handle.write(CONFIG)
    world.ingest_next(seed=1)
    assert world.cli("run") == 0 and len(world.versions()) == 1
    return world


def test_a_run_killed_in_the_trainer_leaves_serving_whole_and_the_rerun_pushes(
        world, capsys):
    world.ingest_next(seed=2)
    before = world.versions()
    watcher = RunWatcher(subprocess.Popen(
        [RECSYS, "run", *world.args()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1, start_new_session=True))
    assert watcher.started("Trainer")
    time.sleep(3)  # into its training, which takes longer (the kill's moment in the log)
    watcher.kill()
    assert world.versions() == before and not served_check(world, before[-1])
    assert world.cli("history") == 0
    assert "interrupted during Trainer (a rerun starts there again)" in capsys.readouterr().out
    assert world.cli("run") == 0
    printed = capsys.readouterr().out
    assert "Cleared the lock of a run that is gone" in printed
    assert len(world.versions()) == 2 and not served_check(world, before[-1])
    assert trained_spans(world) == [0, 1, 2]


def test_examples_damaged_on_disk_are_set_aside_and_written_anew(world, capsys):
    shard = _shards(world)[0]  # span 2's train split
    _truncate(shard)
    world.ingest_next(seed=3)
    before = world.versions()
    assert world.cli("run") == 0
    printed = capsys.readouterr().out
    assert f"Examples of span 2 are damaged ({shard}: truncated record" in printed
    assert trained_spans(world) == [0, 1, 2, 3]  # each span once
    assert len(world.versions()) == len(before) + 1 and not served_check(world, before[-1])


def test_a_full_disk_during_the_push_fails_in_one_line_and_the_rerun_pushes(
        world, capsys, monkeypatch):
    world.ingest_next(seed=4)
    before = world.versions()
    def full_when_flushed(folder):  # the copy made, the disk full as it is flushed
        raise OSError(errno.ENOSPC, "No space left on device", folder)

    monkeypatch.setattr(pusher_versions, "_flush", full_when_flushed)
    assert world.cli("run") == cli.EXIT_NO_SPACE
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: no space left on device") and len(error) == 1
    serving = os.path.join(world.output, "serving")
    assert sorted(os.listdir(serving)) == before  # no staging folder either
    monkeypatch.undo()
    assert world.cli("run") == 0
    assert len(world.versions()) == len(before) + 1 and not served_check(world, before[-1])


def test_a_damaged_newest_version_is_named_and_servers_keep_the_one_before(world, capsys):
    serving = os.path.join(world.output, "serving")
    versions = world.versions()
    newest = os.path.join(serving, versions[-1])
    os.remove(os.path.join(newest, "saved_model.pb"))
    assert world.cli("recommend", "--user", "1") == cli.EXIT_NO_MODEL
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: {newest} does not load")
    assert "recsys rollback" in error[0]
    server = ModelVersions(serving)
    server.poll()  # a server starting now serves the newest version that loads
    assert server.served.version == versions[-2] and versions[-1] in server.refused()
    assert world.cli("rollback") == 0
    assert world.cli("recommend", "--user", "1") == 0


def test_a_damaged_metadata_database_is_named_with_what_to_do(world, tmp_path, capsys):
    output = tmp_path / "output"
    shutil.copytree(world.output, output)
    with open(output / "metadata.sqlite", "r+b") as handle:
        handle.write(b"\0garbage" * 64)
    args = ["--data", world.data, "--output", str(output), "--config", world.config]
    for command in (["run"], ["history"], ["rollback"]):
        assert cli.main([*command, *args]) == cli.EXIT_DAMAGED
        error = capsys.readouterr().err.strip().splitlines()
        assert error[-1].startswith(f"error: {output / 'metadata.sqlite'} is damaged")
        assert "move it aside" in error[-1]
    assert sorted(os.listdir(output / "serving")) == world.versions()
