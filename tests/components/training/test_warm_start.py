"""Warm start carries weights over by id, whatever the new vocabulary order."""

import re

import numpy as np
import tensorflow as tf

from components import features as F
from components.models.hybrid import HybridModel, ModelConfig
from components.models.item_autoencoder import ItemAutoencoder
from components.training.warm_start import COPIED, ROWS_BY_ID, warm_start
from tests.components.models.test_model import VOCAB, _batch, _candidates

USERS = F.USER_VOCAB


def _variable(name, values):
    return tf.Variable(np.asarray(values, np.float32), name=name)


def test_id_rows_follow_their_ids_and_new_ids_keep_fresh_rows():
    previous = {"user_tower/user_id/vectors/embeddings": np.array([[1., 1.], [2., 2.], [3., 3.],
                                                                    [9., 9.]]),
                "rank_bias": np.array([10., 20.])}
    old_ids = {USERS: [b"a", b"b", b"c"], F.ITEM_VOCAB: [b"x", b"y"]}
    new_ids = {USERS: [b"c", b"a", b"d"], F.ITEM_VOCAB: [b"y", b"z", b"x"]}
    users = _variable("user_tower/user_id/vectors/embeddings", np.zeros((4, 2)))  # + OOV row
    biases = _variable("rank_bias", [0., 0., 0.])
    report = warm_start([users, biases], previous, old_ids, new_ids)
    np.testing.assert_array_equal(users.numpy(), [[3, 3], [1, 1], [0, 0], [0, 0]])
    np.testing.assert_array_equal(biases.numpy(), [20, 0, 10])
    assert report.mapped == {"user_tower/user_id/vectors/embeddings": 2, "rank_bias": 2}
    assert report.new_ids == {USERS: 1, F.ITEM_VOCAB: 1}


def test_shape_free_weights_are_copied_and_content_embeddings_start_fresh():
    previous = {"global_bias": np.float32(3.7),
                "user_tower/demographics/projection/kernel": np.ones((3, 2)),
                "item_tower/content/projection/kernel": np.ones((5, 2)),
                "user_tower/occupation/embeddings": np.ones((4, 2))}
    mean = _variable("global_bias", 3.5)
    projection = _variable("user_tower/demographics/projection/kernel", np.zeros((3, 2)))
    grown = _variable("item_tower/content/projection/kernel", np.zeros((6, 2)))
    occupation = _variable("user_tower/occupation/embeddings", np.zeros((4, 2)))
    report = warm_start([mean, projection, grown, occupation], previous, {}, {})
    assert mean.numpy() == np.float32(3.7) and projection.numpy().sum() == 6
    assert not grown.numpy().any() and not occupation.numpy().any()
    assert sorted(report.copied) == ["global_bias", "user_tower/demographics/projection/kernel"]


def test_every_rule_names_real_variables_of_the_hybrid():
    """Of the towers or of the item autoencoder."""
    model = HybridModel(VOCAB, ModelConfig(embedding_dim=8), mean_rating=3.5,
                        candidates=_candidates(),
                        history=(np.array([0, 1, 1] + [1] * (VOCAB.users - 2)),
                                 np.array([2]), np.array([4.0])))
    model(_batch(4)[0])
    variables = [*model.variables,
                 *ItemAutoencoder(num_users=VOCAB.users - 1, hidden=4, seed=0).variables]
    # Exported under the model's own scope, as a model built by calling it is.
    previous = {v.name.split(":")[0]: v.numpy() + 1 for v in variables}
    report = warm_start(variables, previous, {USERS: [b"u"], F.ITEM_VOCAB: [b"i"]},
                        {USERS: [b"u"], F.ITEM_VOCAB: [b"i"]})
    touched = [*report.copied, *report.mapped]
    for prefix in (*ROWS_BY_ID, *COPIED):
        assert any(n == prefix or n.startswith(prefix) for n in touched), prefix


def test_models_built_by_calling_them_warm_start_each_other():
    """A model built by calling it scopes its variables by its own name (hybrid_model/...,
    hybrid_model_1/... for a second one); a chain of warm starts must still match them."""
    history = (np.array([0, 1, 1] + [1] * (VOCAB.users - 2)), np.array([2]), np.array([4.0]))
    served, fresh = (HybridModel(VOCAB, ModelConfig(embedding_dim=8), mean_rating=3.5,
                                 candidates=_candidates(), history=history) for _ in range(2))
    served(_batch(4)[0])
    fresh(_batch(4)[0])
    exported = {v.name.split(":")[0]: v.numpy() for v in served.variables}
    assert any(re.match(r"hybrid_model(_\d+)?/user_tower/", name) for name in exported)
    ids = {USERS: [f"u{n}".encode() for n in range(VOCAB.users - 1)],
           F.ITEM_VOCAB: [f"i{n}".encode() for n in range(VOCAB.items - 1)]}
    report = warm_start(fresh.variables, exported, ids, ids)
    assert report.mapped["user_tower/user_id/vectors/embeddings"] == VOCAB.users - 1
    for old, new in zip(served.variables, fresh.variables):
        if old.name.split("/", 1)[-1].startswith("user_tower/user_id/"):  # all but the OOV row
            np.testing.assert_array_equal(new.numpy()[:-1], old.numpy()[:-1])
