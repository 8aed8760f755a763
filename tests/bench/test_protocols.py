"""The benchmark's protocol folders: disjoint, complete, valid raw folders per split."""

import os

import pytest

from bench.protocols import SPLITS, write_protocols, write_validation_protocols
from data import raw_format as R
from data import synthetic
from data.validate import validate_folder


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("raw")), 40, 60, 1000, seed=5)


def _lines(folder):
    with open(os.path.join(folder, R.RATINGS_FILE)) as handle:
        return handle.read().splitlines()[1:]


def test_every_protocol_splits_all_ratings_into_valid_train_and_eval_folders(source, tmp_path):
    folders = write_protocols(source, str(tmp_path))
    assert sorted(folders) == sorted(["u1", "u2", "u3", "u4", "u5", "stratified",
                                      "stratified_seed2", "leave_last_10", "cold_start",
                                      "temporal", "cold_items", "few_answers"])
    everything = _lines(source)
    for name, folder in folders.items():
        train, test = (_lines(os.path.join(folder, split)) for split in SPLITS)
        assert sorted(train + test) == sorted(everything), name
        assert train and test, name
        for split in SPLITS:
            validate_folder(os.path.join(folder, split))
    u1_test = _lines(os.path.join(folders["u1"], "eval"))
    assert u1_test == everything[:len(everything) // 5]  # the first fifth, in file order


def test_cold_start_users_never_appear_in_train(source, tmp_path):
    folder = write_protocols(source, str(tmp_path), ["cold_start"])["cold_start"]
    train_users = {line.split(",")[0] for line in _lines(os.path.join(folder, "train"))}
    test_users = {line.split(",")[0] for line in _lines(os.path.join(folder, "eval"))}
    assert test_users and not train_users & test_users


def test_validation_slices_come_from_the_train_part_only(source, tmp_path):
    folders = write_protocols(source, str(tmp_path / "test"))
    validation = write_validation_protocols(folders, str(tmp_path / "validation"))
    assert sorted(validation) == sorted(folders)
    for name, folder in validation.items():
        train = _lines(os.path.join(folders[name], "train"))
        fit, held = (_lines(os.path.join(folder, split)) for split in SPLITS)
        assert sorted(fit + held) == sorted(train), name
        assert fit and held, name
    cold = validation["cold_start"]
    assert not ({line.split(",")[0] for line in _lines(os.path.join(cold, "train"))}
                & {line.split(",")[0] for line in _lines(os.path.join(cold, "eval"))})
