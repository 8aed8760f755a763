"""Shared fixtures: synthetic data and one real pipeline run on it, reused across tests."""

import os

from pipeline.cli import tensorflow_environment

tensorflow_environment()  # as `recsys`: before any test imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from data import synthetic  # noqa: E402

E2E_USERS, E2E_ITEMS, E2E_RATINGS = 300, 400, 20000
# Small and quick, but enough for the model to beat the baselines.
E2E_CONFIG = """
training:
  epochs: 8
  batch_size: 512
evaluation:
  max_rmse: 1.0
"""


# Movies in items.csv that no rating names yet (a catalog's newest): served from their content.
COLD_ITEMS = (("9001", "A New Space Saga", "1998", "Sci-Fi|Action"),
              ("9002", "A New Romantic Comedy", "1997", "Comedy|Romance"),
              ("9003", "An Old Western Found Again", "1950", "Western"))


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory):
    folder = synthetic.generate(str(tmp_path_factory.mktemp("synthetic")),
                                E2E_USERS, E2E_ITEMS, E2E_RATINGS, seed=7)
    with open(os.path.join(folder, "items.csv"), "a") as items:
        items.writelines(",".join(item) + "\n" for item in COLD_ITEMS)
    return folder


@pytest.fixture(scope="session")
def e2e_config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(E2E_CONFIG)
    return str(path)


@pytest.fixture(scope="session")
def pipeline_run(synthetic_folder, e2e_config_file, tmp_path_factory):
    """Runs `recsys run` once on synthetic data; yields (output folder, exit code). The run's
    temporary files go to the folder's sibling tmp/, where tests can look at what it left."""
    import tempfile

    from pipeline import cli

    run_dir = tmp_path_factory.mktemp("e2e")
    output = str(run_dir / "output")
    (run_dir / "tmp").mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(run_dir / "tmp")
    try:
        code = cli.main(["run", "--data", synthetic_folder, "--output", output,
                         "--config", e2e_config_file])
    finally:
        tempfile.tempdir = saved
    return output, code


def _ranks_each_user_as_alone(recommender, users, features=None, k=10):
    """A batch is scored in blocks of users (components/serving/export.py `top_k_by_blocks`): a
    batch of several blocks, the last one short, ranks each user as a call of its own does."""
    import numpy as np

    from components.serving.export import SCORE_BLOCK_USERS

    assert len(users) > 2 * SCORE_BLOCK_USERS and len(users) % SCORE_BLOCK_USERS
    alone = [rows for number, user in enumerate(users) for rows in recommender.recommend(
        [user], k, features and {name: [values[number]] for name, values in features.items()})]
    together = recommender.recommend(users, k, features)
    assert [[item for item, _ in rows] for rows in together] == [
        [item for item, _ in rows] for rows in alone]
    np.testing.assert_allclose([[score for _, score in rows] for rows in together],
                               [[score for _, score in rows] for rows in alone], rtol=1e-5)


@pytest.fixture(scope="session")
def ranks_each_user_as_alone():
    return _ranks_each_user_as_alone


@pytest.fixture(scope="session")
def run(pipeline_run):
    """The output folder of pipeline_run, which succeeded."""
    output, code = pipeline_run
    assert code == 0
    return output
