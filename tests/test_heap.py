"""The collector settings of a `recsys` process (pipeline/heap.py)."""

import gc
import importlib.metadata
import sys

import pytest

from pipeline import heap


@pytest.fixture
def unfrozen():
    """Each test starts and ends with nothing frozen in this (shared) test process."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _new_module(tmp_path, monkeypatch, name: str) -> str:
    (tmp_path / f"{name}.py").write_text("class Node:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_imports_run_uncollected_then_what_exists_is_frozen(tmp_path, monkeypatch, unfrozen):
    name = _new_module(tmp_path, monkeypatch, "heap_probe_module")
    with heap.long_lived():
        assert not gc.isenabled()
        importlib.import_module(name)
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    # Frozen: no longer among the objects a collection walks.
    node_class = sys.modules[name].Node
    assert not any(obj is node_class for obj in gc.get_objects())


def test_nothing_is_frozen_where_nothing_new_was_imported(unfrozen):
    with heap.long_lived():
        import json  # noqa: F401 - imported long before
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_a_paused_collector_stays_paused(tmp_path, monkeypatch, unfrozen):
    name = _new_module(tmp_path, monkeypatch, "heap_probe_paused")
    gc.disable()
    try:
        with heap.long_lived():
            importlib.import_module(name)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_resumes_when_an_import_fails(unfrozen):
    with pytest.raises(ModuleNotFoundError):
        with heap.long_lived():
            importlib.import_module("no_such_module_anywhere")
    assert gc.isenabled()


def test_exit_freezes_then_exits_with_the_code(unfrozen):
    with pytest.raises(SystemExit) as exited:
        heap.exit_uncollected(3)
    assert exited.value.code == 3
    assert gc.get_freeze_count() > 0


def test_the_recsys_command_is_the_console_entry_point():
    [script] = [entry for entry in importlib.metadata.entry_points(group="console_scripts")
                if entry.name == "recsys"]
    assert script.value == "pipeline.cli:console"
