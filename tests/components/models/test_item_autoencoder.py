"""The item autoencoder: its sparse arithmetic against the dense definition, and what it learns."""

import numpy as np
import pytest
import tensorflow as tf

from components import features as F
from components.models.item_autoencoder import (
    AutoencoderConfig,
    ItemAutoencoder,
    epoch_batches,
    fit_item_autoencoder,
)
from components.training.catalog import Catalog
from components.training.trainer import TrainingConfig, fit_autoencoder, fit_item_item


def test_sparse_codes_and_predictions_equal_the_dense_formula():
    rng = np.random.default_rng(1)
    ratings = np.where(rng.random((5, 9)) < 0.4, rng.integers(1, 6, (5, 9)), 0).astype(np.float32)
    model = ItemAutoencoder(num_users=9, hidden=4, seed=3)
    model.encoder_bias.assign(rng.normal(size=4).astype(np.float32))
    model.decoder_bias.assign(rng.normal(size=9).astype(np.float32))
    codes = model.codes(tf.sparse.from_dense(ratings))
    dense_codes = 1 / (1 + np.exp(-(ratings @ model.encoder.numpy() + model.encoder_bias.numpy())))
    np.testing.assert_allclose(codes.numpy(), dense_codes, rtol=1e-5)
    rows, users = np.array([0, 4, 4, 2]), np.array([8, 0, 3, 3])
    reconstruction = dense_codes @ model.decoder.numpy().T + model.decoder_bias.numpy()
    np.testing.assert_allclose(model.predict(codes, rows, users).numpy(),
                               reconstruction[rows, users], rtol=1e-5)


NUM_USERS, NUM_ITEMS = 40, 20
# Two groups of users with opposite tastes over two groups of items.
TASTE = np.where((np.arange(NUM_USERS)[:, None] < NUM_USERS // 2)
                 == (np.arange(NUM_ITEMS)[None, :] < NUM_ITEMS // 2), 5.0, 1.0)
RATED = np.random.default_rng(0).random((NUM_USERS, NUM_ITEMS)) < 0.7


def _catalog(user_order=tuple(range(NUM_USERS))) -> Catalog:
    """RATED's ratings, user user_order[n] at index n."""
    user_order = np.asarray(user_order)
    rated = RATED[user_order]
    users, items = np.nonzero(rated)
    counts = rated.sum(axis=1)
    return Catalog(
        user_features={}, item_year_buckets=np.zeros(NUM_ITEMS, np.int64),
        item_genres=[np.zeros(1, np.int64)] * NUM_ITEMS,
        item_title_tokens=[np.zeros(1, np.int64)] * NUM_ITEMS,
        seen_splits=np.concatenate([[0], np.cumsum(counts), [counts.sum()]]),
        seen_items=items, seen_ratings=TASTE[user_order][users, items].astype(np.float32),
        popularity=np.bincount(items, minlength=NUM_ITEMS) / len(items), mean_rating=3.0,
        num_ratings=len(items))


def _ids(user_order):
    return {F.USER_VOCAB: [f"u{user}".encode() for user in user_order], F.ITEM_VOCAB: []}


def _exported(fitted):
    return {v.name.split(":")[0]: v.numpy() for v in fitted.variables}


def test_it_learns_a_taste_interaction_that_biases_cannot_express():
    """Every user's and item's mean is 3, so biases predict 3 everywhere (RMSE 2); the
    autoencoder must recover the held-out ratings from who else liked each item."""
    tables = fit_item_autoencoder(_catalog(), AutoencoderConfig(
        hidden=8, l2=1.0, epochs=200, batch_items=4, learning_rate=0.01)).tables
    held_users, held_items = np.nonzero(~RATED)
    predicted = np.clip(tables.ratings(held_users, held_items), 1, 5)
    assert np.sqrt(np.mean((predicted - TASTE[held_users, held_items]) ** 2)) < 0.6


def test_a_warm_start_carries_every_users_rows_over_by_id():
    """The next run's vocabulary orders the users differently: with no warm epochs the
    warm-started autoencoder is the previous one, its rows moved to the users' new indices."""
    order = np.arange(NUM_USERS)
    served = fit_item_autoencoder(_catalog(order), AutoencoderConfig(hidden=8, epochs=20))
    reordered = order[::-1]
    warm = fit_item_autoencoder(
        _catalog(reordered), AutoencoderConfig(hidden=8, epochs=20, warm_start_epochs=0),
        previous=(_exported(served), _ids(order)), ids=_ids(reordered))
    assert warm.warm_start.mapped == {"item_autoencoder/encoder": NUM_USERS,
                                      "item_autoencoder/decoder": NUM_USERS,
                                      "item_autoencoder/decoder_bias": NUM_USERS}
    assert warm.warm_start.copied == ["item_autoencoder/encoder_bias"]
    np.testing.assert_array_equal(warm.tables.user_vectors, served.tables.user_vectors[::-1])
    np.testing.assert_array_equal(warm.tables.user_biases, served.tables.user_biases[::-1])
    np.testing.assert_allclose(warm.tables.item_vectors, served.tables.item_vectors, rtol=1e-5)


@pytest.mark.parametrize("served", ["towers only", "another width"])
def test_a_previous_model_without_this_autoencoder_trains_the_cold_epochs(served):
    """A model in service exported before the autoencoder's weights were saved, or with
    another hidden width (only the decoder's biases would match): the full epochs, not the
    warm ones."""
    config = AutoencoderConfig(hidden=8, epochs=0, warm_start_epochs=5)
    previous = ({"user_tower/user_id/vectors/embeddings": np.zeros((NUM_USERS + 1, 4))}
                if served == "towers only" else _exported(fit_item_autoencoder(
                    _catalog(), AutoencoderConfig(hidden=6, epochs=1))))
    ids = _ids(np.arange(NUM_USERS))
    fitted = fit_item_autoencoder(_catalog(), config, previous=(previous, ids), ids=ids)
    assert "item_autoencoder/encoder" not in fitted.warm_start.mapped
    untrained = fit_item_autoencoder(_catalog(), config)
    np.testing.assert_array_equal(fitted.tables.item_vectors, untrained.tables.item_vectors)


@pytest.mark.parametrize("num_items, sizes", [
    (1682, [64] * 26 + [18]),  # ML-100K: batches of 64
    (10677, [396] * 26 + [381]),  # ML-10M: 27 larger batches
])
def test_an_epoch_is_every_item_once_in_at_most_27_batches(num_items, sizes):
    batches = epoch_batches(num_items, AutoencoderConfig(), np.random.default_rng(0))
    assert [len(batch) for batch in batches] == sizes
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(num_items))


def test_an_epochs_loss_is_the_same_whatever_its_batches():
    """The regularizer is counted per item: batches of 4 items and of 10 add up to one
    objective over the 20 items (a per-batch λ would count it 5 times against 2)."""
    model = ItemAutoencoder(num_users=NUM_USERS, hidden=4, seed=3)
    by_item = np.where(RATED, TASTE, 0).T.astype(np.float32)  # [items, users]

    def epoch_loss(config):
        batches = epoch_batches(NUM_ITEMS, config, np.random.default_rng(1))
        return sum(float(model.loss(tf.sparse.from_dense(by_item[batch]), 0.5))
                   for batch in batches)

    small, large = (AutoencoderConfig(batch_items=4, max_steps_per_epoch=steps) for steps in (5, 2))
    assert len(epoch_batches(NUM_ITEMS, large, np.random.default_rng(1))) == 2
    whole = float(model.loss(tf.sparse.from_dense(by_item), 0.5))
    assert epoch_loss(small) == pytest.approx(whole, rel=1e-5)
    assert epoch_loss(large) == pytest.approx(whole, rel=1e-5)


def test_its_hand_derived_gradients_are_the_tapes_gradients_of_the_loss():
    """The step's gradients, derived by hand (no per-rating rows), are the tape's gradients of
    loss(), the objective above, to float32 rounding; an item twice in a batch counts twice."""
    model = ItemAutoencoder(num_users=NUM_USERS, hidden=6, seed=3)
    rng = np.random.default_rng(2)
    model.encoder_bias.assign(rng.normal(size=6).astype(np.float32))
    model.decoder_bias.assign(rng.normal(size=NUM_USERS).astype(np.float32))
    batch = tf.sparse.from_dense(np.where(RATED, TASTE, 0).T[[3, 7, 7, 12]].astype(np.float32))
    with tf.GradientTape() as tape:
        loss = model.loss(batch, 0.5)
    expected = tape.gradient(loss, model.weights)
    for ours, theirs in zip(model.gradients(batch, 0.5), expected):
        theirs = tf.convert_to_tensor(theirs).numpy()
        assert np.abs(theirs).max() > 0.1
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=2e-5, atol=2e-6)
    assert len(model.variables) == 4


def test_a_batch_in_user_order_gives_the_same_gradients():
    """_rows hands the step its entries in user order, not row-major; the gradients are still
    the tape's of the loss (which does not depend on the order), an item twice included."""
    from components.models.item_autoencoder import _rated_by, _rows

    model = ItemAutoencoder(num_users=NUM_USERS, hidden=6, seed=3)
    model.decoder_bias.assign(np.random.default_rng(2).normal(size=NUM_USERS).astype(np.float32))
    raters, ratings = _rated_by(_catalog())
    batch = _rows(raters, ratings, tf.constant([3, 7, 7, 12], tf.int64), NUM_USERS)
    users = batch.indices.numpy()[:, 1]
    assert np.all(np.diff(users) >= 0) and np.any(np.diff(batch.indices.numpy()[:, 0]) < 0)
    with tf.GradientTape() as tape:
        loss = model.loss(tf.sparse.reorder(batch), 0.5)
    for ours, theirs in zip(model.gradients(batch, 0.5), tape.gradient(loss, model.weights)):
        np.testing.assert_allclose(ours.numpy(), tf.convert_to_tensor(theirs).numpy(),
                                   rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("budget_epochs, trained", [(3, 3), (100, 20)])
def test_the_trainer_gives_it_the_epochs_its_example_budget_allows(budget_epochs, trained):
    catalog = _catalog()
    config = TrainingConfig(autoencoder_hidden=8, autoencoder_epochs=20,
                            autoencoder_example_budget=budget_epochs * catalog.num_ratings)
    assert fit_autoencoder(config, catalog, previous=None, ids=None).epochs == trained


def test_no_share_fits_no_model():
    config = TrainingConfig(autoencoder_share=0.0, item_item_weight=0.0)
    assert fit_autoencoder(config, _catalog(), previous=None, ids=None) is None
    assert fit_item_item(config, _catalog()) is None


def test_the_warm_epochs_are_budgeted_too():
    order = np.arange(NUM_USERS)
    served = fit_item_autoencoder(_catalog(order), AutoencoderConfig(hidden=8, epochs=2))
    catalog = _catalog(order)
    config = TrainingConfig(autoencoder_hidden=8, autoencoder_warm_start_epochs=20,
                            autoencoder_example_budget=3 * catalog.num_ratings)
    warm = fit_autoencoder(config, catalog, previous=(_exported(served), _ids(order)),
                           ids=_ids(order))
    assert "item_autoencoder/encoder" in warm.warm_start.mapped
    assert warm.epochs == 3
