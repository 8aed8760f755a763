"""The item autoencoder: its sparse arithmetic against the dense definition, and what it learns."""

import numpy as np
import tensorflow as tf

from components.catalog import Catalog
from components.item_autoencoder import AutoencoderConfig, ItemAutoencoder, fit_item_autoencoder


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


def test_it_learns_a_taste_interaction_that_biases_cannot_express():
    """Two groups of users with opposite tastes over two groups of items: every user's and
    item's mean is 3, so biases predict 3 everywhere (RMSE 2); the autoencoder must recover
    the held-out ratings from who else liked each item."""
    rng = np.random.default_rng(0)
    num_users, num_items = 40, 20
    taste = np.where((np.arange(num_users)[:, None] < num_users // 2)
                     == (np.arange(num_items)[None, :] < num_items // 2), 5.0, 1.0)
    rated = rng.random((num_users, num_items)) < 0.7
    users, items = np.nonzero(rated)
    counts = rated.sum(axis=1)
    catalog = Catalog(
        user_features={}, item_year_buckets=np.zeros(num_items, np.int64),
        item_genres=[np.zeros(1, np.int64)] * num_items,
        seen_splits=np.concatenate([[0], np.cumsum(counts), [counts.sum()]]),
        seen_items=items, seen_ratings=taste[users, items].astype(np.float32),
        popularity=np.bincount(items, minlength=num_items) / len(items), mean_rating=3.0,
        num_ratings=len(items))
    tables = fit_item_autoencoder(catalog, AutoencoderConfig(
        hidden=8, l2=1.0, epochs=200, batch_items=4, learning_rate=0.01))
    held_users, held_items = np.nonzero(~rated)
    predicted = np.clip(tables.ratings(held_users, held_items), 1, 5)
    assert np.sqrt(np.mean((predicted - taste[held_users, held_items]) ** 2)) < 0.6
