"""The source fingerprint in the cache keys sees an edit to any module the components run."""

import glob
import os

from pipeline import fingerprint


def test_every_component_module_is_in_the_source_fingerprint(monkeypatch):
    fingerprinted = []
    monkeypatch.setattr(fingerprint, "_digest", lambda paths: fingerprinted.extend(paths) or "")
    fingerprint.source_fingerprint()
    root = fingerprint.PROJECT_DIR
    modules = glob.glob(os.path.join(root, "components", "**", "*.py"), recursive=True)
    assert len(modules) > 20  # the subpackages' modules, not just components/*.py
    assert set(modules) | {os.path.join(root, "data", "raw_format.py")} == set(fingerprinted)


def test_an_edit_in_a_subpackage_changes_the_fingerprint(tmp_path, monkeypatch):
    (tmp_path / "components" / "training").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    module = tmp_path / "components" / "training" / "trainer.py"
    module.write_text("EPOCHS = 8\n")
    (tmp_path / "data" / "raw_format.py").write_text("")
    monkeypatch.setattr(fingerprint, "PROJECT_DIR", str(tmp_path))
    before = fingerprint.source_fingerprint()
    module.write_text("EPOCHS = 9\n")
    assert fingerprint.source_fingerprint() != before
