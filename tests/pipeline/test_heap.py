"""The collector settings of a `recsys` process (pipeline/heap.py, pipeline/cli.py)."""

import gc
import importlib.metadata
import sys

import pytest

from pipeline import cli, heap


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


@pytest.mark.parametrize("freeze", [True, False], ids=["own process", "caller's process"])
def test_imports_run_uncollected_then_are_frozen_only_where_asked(
        freeze, tmp_path, monkeypatch, unfrozen):
    name = _new_module(tmp_path, monkeypatch, f"heap_probe_{freeze}")
    with heap.long_lived(freeze=freeze):
        assert not gc.isenabled()
        importlib.import_module(name)
    assert gc.isenabled()
    assert (gc.get_freeze_count() > 0) is freeze
    # Frozen: no longer among the objects a collection walks.
    node_class = sys.modules[name].Node
    assert any(obj is node_class for obj in gc.get_objects()) is not freeze


def test_a_paused_collector_stays_paused(unfrozen):
    gc.disable()
    try:
        with heap.long_lived(freeze=False):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_resumes_when_an_import_fails(unfrozen):
    with pytest.raises(ModuleNotFoundError):
        with heap.long_lived(freeze=True):
            importlib.import_module("no_such_module_anywhere")
    assert gc.isenabled()


def test_exit_freezes_then_exits_with_the_code(unfrozen):
    with pytest.raises(SystemExit) as exited:
        heap.exit_uncollected(3)
    assert exited.value.code == 3
    assert gc.get_freeze_count() > 0


def test_the_command_exits_with_mains_code_from_a_process_of_its_own(monkeypatch, unfrozen):
    calls = []
    monkeypatch.setattr(cli, "main", lambda **kwargs: calls.append(kwargs) or 5)
    with pytest.raises(SystemExit) as exited:
        cli.console()
    assert exited.value.code == 5
    assert calls == [{"own_process": True}]


def test_in_process_callers_of_main_freeze_nothing(tmp_path, unfrozen):
    assert cli.main(["history", "--output", str(tmp_path)]) in (0, cli.EXIT_NO_MODEL)
    assert gc.get_freeze_count() == 0


def test_the_recsys_command_is_the_console_entry_point():
    [script] = [entry for entry in importlib.metadata.entry_points(group="console_scripts")
                if entry.name == "recsys"]
    assert script.value == "pipeline.cli:console"
