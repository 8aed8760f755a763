"""The pipeline past one process, on this machine: every Beam component on a local Dask
cluster of two worker processes, and the towers on two training worker processes
(MultiWorkerMirroredStrategy). Each run is compared with the session's DirectRunner,
one-process run on the same data and settings (tests/conftest.py)."""

import glob
import json
import os

import pytest
import tensorflow_data_validation as tfdv

from components.training.trainer import TRAINING_FILE
from pipeline import cli
from pipeline.config import load_config
from pipeline.results import RMSE_NAME, latest_run_result
from tests.conftest import E2E_CONFIG
from tests.end_to_end.test_pipeline_e2e import _split_records


def _only(pattern):
    [path] = glob.glob(pattern)
    return path


def _statistics(output, split):
    stats = tfdv.load_stats_binary(_only(os.path.join(
        output, "pipeline", "StatisticsGen", "statistics", "*", f"Split-{split}",
        "FeatureStats.pb"))).datasets[0]
    return stats.num_examples, {
        feature.path.step[0]: (feature.num_stats.common_stats.num_non_missing
                               or feature.string_stats.common_stats.num_non_missing)
        for feature in stats.features}


def _vocabularies(output):
    assets = _only(os.path.join(output, "pipeline", "Transform", "transform_graph", "*",
                                "transform_fn", "assets"))
    return {name: open(os.path.join(assets, name), "rb").read() for name in os.listdir(assets)}


def _rmse(output):
    return latest_run_result(load_config(output_dir=output)).metrics[RMSE_NAME]


@pytest.fixture(scope="module")
def on_dask(synthetic_folder, e2e_config_file, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("on_dask") / "output")
    assert cli.main(["run", "--data", synthetic_folder, "--output", output, "--config",
                     e2e_config_file, "--beam-runner", "dask", "--dask-workers", "2"]) == 0
    return output


def test_on_dask_every_beam_component_wrote_what_the_direct_runner_wrote(run, on_dask):
    for split in ("train", "eval"):
        assert sorted(_split_records(on_dask, split)) == sorted(_split_records(run, split))
        assert _statistics(on_dask, split) == _statistics(run, split)
    assert _vocabularies(on_dask) == _vocabularies(run)
    # The Evaluator scored the same model on the same examples.
    assert _rmse(on_dask) == pytest.approx(_rmse(run), abs=1e-4)


@pytest.fixture(scope="module")
def two_workers(synthetic_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_workers")
    config = folder / "config.yaml"
    config.write_text(E2E_CONFIG.replace(
        "training:\n", "training:\n  distribution: multi_worker_mirrored\n  local_workers: 2\n"))
    output = str(folder / "output")
    assert cli.main(["run", "--data", synthetic_folder, "--output", output,
                     "--config", str(config)]) == 0
    return output


def test_two_training_workers_train_one_model_as_good_as_one_process(run, two_workers):
    model_run = _only(os.path.join(two_workers, "pipeline", "Trainer", "model_run", "*"))
    with open(os.path.join(model_run, TRAINING_FILE)) as handle:
        record = json.load(handle)
    assert record["replicas"] == 2 and record["refit"]["replicas"] == 2
    assert sorted(os.listdir(model_run)) == [TRAINING_FILE, "worker-0.log", "worker-1.log"]
    # Same settings, the same global batch split over two replicas: within noise
    # (docs/benchmarks.md, "Two training workers").
    assert _rmse(two_workers) == pytest.approx(_rmse(run), abs=0.01)
