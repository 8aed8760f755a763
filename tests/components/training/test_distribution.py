"""The hybrid trains under tf.distribute: one step on two replicas (two logical CPUs, each
with half the batch) moves every weight as one step on one device with the whole batch.

Runs in a subprocess: logical devices must be configured before TensorFlow starts.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from components.training.trainer import TrainingConfig, distribution_strategy
from tests import PROJECT_DIR

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from components.models.hybrid import WeightedSquaresRetrieval
    from tests.components.models.test_model import (
        HybridModel, ModelConfig, VOCAB, _batch, _candidates)

    def one_step(strategy):
        tf.keras.utils.set_random_seed(5)
        with strategy.scope():
            model = HybridModel(
                # Penalties large enough to move the weights past the tolerance below: their
                # gradients are added per replica (HybridModel.gradients).
                VOCAB, ModelConfig(embedding_dim=8, rank_dim=4, id_dropout=0.0,
                                   catalog_id_dropout=0.0, l2=0.1,
                                   rank_l2=0.05), 3.5,
                _candidates(), retrieval_weight=1.0,
                retrieval=WeightedSquaresRetrieval(np.full(VOCAB.users - 1, 4), 0.2),
                history=(np.array([0, 2, 3] + [3] * (VOCAB.users - 2)), np.array([1, 4, 2]),
                         np.array([4.0, 2.0, 5.0])))
            model.compile(optimizer=tf.keras.optimizers.SGD(0.5))
        features, labels = _batch(8, seed=1)
        model.fit(tf.data.Dataset.from_tensors((features, labels)), epochs=1, verbose=0)
        return {v.name: v.numpy() for v in model.trainable_variables}

    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    single, mirrored = one_step(tf.distribute.get_strategy()), one_step(two)
    assert single.keys() == mirrored.keys()
    for name in single:
        np.testing.assert_allclose(mirrored[name], single[name], rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    print("same weights on", len(single), "variables")
""")


def test_two_replicas_take_the_same_step_as_one_device():
    finished = subprocess.run([sys.executable, "-c", SCRIPT, PROJECT_DIR], capture_output=True,
                              text=True, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "same weights on" in finished.stdout


def test_the_strategy_is_chosen_by_the_training_config():
    import tensorflow as tf

    assert distribution_strategy(TrainingConfig()) is tf.distribute.get_strategy()
    assert isinstance(distribution_strategy(TrainingConfig(distribution="mirrored")),
                      tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="training.distribution"):
        TrainingConfig(distribution="parameter_server")


def test_local_workers_need_the_multi_worker_strategy():
    with pytest.raises(ValueError, match="local_workers needs training.distribution"):
        TrainingConfig(local_workers=2)
    with pytest.raises(ValueError, match="local_workers must be ≥ 0"):
        TrainingConfig(distribution="multi_worker_mirrored", local_workers=-1)
    assert TrainingConfig(distribution="multi_worker_mirrored", local_workers=2).local_workers == 2
