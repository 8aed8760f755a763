"""A version is published whole or not at all: a failed or killed copy leaves no numbered
folder, the next publish clears what it left, and pushing the model already served again
reuses its version."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from components.pusher import versions
from components.pusher.versions import STAGING_PREFIX, numbered_versions, publish


def _model(folder, marker: bytes, size: int = 1000):
    os.makedirs(os.path.join(folder, "variables"))
    with open(os.path.join(folder, "saved_model.pb"), "wb") as handle:
        handle.write(marker * size)
    with open(os.path.join(folder, "fingerprint.pb"), "wb") as handle:
        handle.write(marker)
    with open(os.path.join(folder, "variables", "variables.data-00000-of-00001"), "wb") as handle:
        handle.write(os.urandom(size))
    return str(folder)


def _same_tree(first, second):
    files = lambda root: sorted(os.path.relpath(os.path.join(r, n), root)  # noqa: E731
                                for r, _, names in os.walk(root) for n in names)
    assert files(first) == files(second)
    for name in files(first):
        with open(os.path.join(first, name), "rb") as a, open(os.path.join(second, name),
                                                              "rb") as b:
            assert a.read() == b.read()


def test_publish_copies_the_model_whole_into_the_next_version(tmp_path):
    model, serving = _model(tmp_path / "m1", b"a"), str(tmp_path / "serving")
    version = publish(model, serving)
    assert numbered_versions(serving) == [version] and os.listdir(serving) == [version]
    _same_tree(model, os.path.join(serving, version))
    second = publish(_model(tmp_path / "m2", b"b"), serving)
    assert int(second) > int(version) and numbered_versions(serving) == [version, second]


def test_a_copy_that_fails_midway_leaves_no_version_and_no_staging_folder(tmp_path,
                                                                         monkeypatch):
    model, serving = _model(tmp_path / "m1", b"a"), str(tmp_path / "serving")
    first = publish(model, serving)

    def copy_then_fill_the_disk(source, target):
        os.makedirs(target)
        shutil.copy(os.path.join(source, "saved_model.pb"), target)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", copy_then_fill_the_disk)
    with pytest.raises(OSError, match="No space left"):
        publish(_model(tmp_path / "m2", b"b"), serving)
    assert os.listdir(serving) == [first]


def test_a_killed_publish_leaves_only_a_staging_folder_which_the_next_publish_clears(
        tmp_path):
    big = tmp_path / "big"
    _model(big, b"x", size=1)
    for number in range(60):  # ~240 MB: the copy takes long enough to be killed in
        with open(big / "variables" / f"shard-{number}", "wb") as handle:
            handle.write(os.urandom(4 * 2**20))
    serving = tmp_path / "serving"
    serving.mkdir()
    process = subprocess.Popen([sys.executable, "-c",
                                "import sys; from components.pusher.versions import publish; "
                                "publish(sys.argv[1], sys.argv[2])", str(big), str(serving)])
    deadline = time.monotonic() + 60
    while not any(n.startswith(STAGING_PREFIX) for n in os.listdir(serving)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert numbered_versions(str(serving)) == []  # a server sees nothing half written
    assert [n for n in os.listdir(serving) if n.startswith(STAGING_PREFIX)]
    version = publish(_model(tmp_path / "m", b"c"), str(serving))
    assert os.listdir(serving) == [version]


def test_publishing_the_model_the_highest_version_holds_reuses_it(tmp_path):
    """A run killed after its push but before ML Metadata recorded it pushes again on rerun."""
    serving = str(tmp_path / "serving")
    version = publish(_model(tmp_path / "m1", b"a"), serving)
    assert publish(_model(tmp_path / "again", b"a"), serving, reuse_highest=True) == version
    assert numbered_versions(serving) == [version]
    copy = publish(_model(tmp_path / "third", b"a"), serving)  # a rollback's copy: a new one
    assert numbered_versions(serving) == [version, copy]


def test_versions_stay_above_the_highest_when_the_clock_is_behind(tmp_path, monkeypatch):
    serving = tmp_path / "serving"
    (serving / "2000000000").mkdir(parents=True)  # a rollback's, ahead of this clock
    monkeypatch.setattr(versions.time, "time", lambda: 1_900_000_000.5)
    assert publish(_model(tmp_path / "m", b"a"), str(serving)) == "2000000001"
