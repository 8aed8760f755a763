"""EASE's closed form against the ridge regression it solves, column by column, and the
strongest-neighbour rows that are served."""

import numpy as np
import pytest

from components.models import item_item
from components.models.item_item import fit_ease, strongest_neighbours
from components.training.trainer import TrainingConfig


def _csr(rows):
    splits = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return splits, np.concatenate([np.asarray(r, np.int64) for r in rows])


@pytest.mark.parametrize("row_block", [2, item_item.ROW_BLOCK])
def test_each_column_is_the_ridge_regression_on_the_other_items(row_block, monkeypatch):
    """With the Gramian built in one product and in blocks of 2 rows (the last one short)."""
    monkeypatch.setattr(item_item, "ROW_BLOCK", row_block)
    rng = np.random.default_rng(0)
    interactions = rng.random((40, 7)) < 0.4
    splits, items = _csr([np.flatnonzero(row) for row in interactions])
    weights = fit_ease(splits, items, 7, regularization=3.0)
    x = interactions.astype(np.float64)
    for i in range(7):
        others = [j for j in range(7) if j != i]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + 3.0 * np.eye(6), a.T @ x[:, i])
        np.testing.assert_allclose(weights[others, i], expected, rtol=1e-4, atol=1e-6)
        assert weights[i, i] == 0.0


def test_a_pair_counts_once_whatever_its_repeats_and_unrated_items_get_zero_weights():
    splits, items = _csr([[0, 1, 1], [1, 2], [0, 2, 0]])
    once = fit_ease(*_csr([[0, 1], [1, 2], [0, 2]]), 4, regularization=1.0)
    np.testing.assert_allclose(fit_ease(splits, items, 4, regularization=1.0), once)
    assert not once[3].any() and not once[:, 3].any()


def test_items_rated_together_predict_each_other():
    splits, items = _csr([[0, 1]] * 20 + [[2]] * 20)
    weights = fit_ease(splits, items, 3, regularization=1.0)
    assert weights[0, 1] > 0.5 and weights[1, 0] > 0.5
    assert weights[0, 2] == pytest.approx(0.0, abs=1e-6)


def test_the_scale_multiplies_every_weight():
    splits, items = _csr([[0, 1], [1, 2], [0, 2], [0, 1, 2]])
    np.testing.assert_allclose(fit_ease(splits, items, 3, regularization=1.0, scale=0.75),
                               0.75 * fit_ease(splits, items, 3, regularization=1.0),
                               rtol=1e-6)


@pytest.mark.parametrize("config, num_items, served", [
    (TrainingConfig(), 1682, 0),  # ML-100K: whole rows
    (TrainingConfig(), 4096, 0),
    (TrainingConfig(), 10677, 256),  # ML-10M: each item's 256 strongest
    (TrainingConfig(item_item_neighbours=0), 10677, 0),
    (TrainingConfig(item_item_neighbours=32, item_item_whole_rows_up_to=0), 400, 32),
])
def test_catalogs_above_the_whole_rows_bound_serve_the_strongest_neighbours(
        config, num_items, served):
    assert config.served_neighbours(num_items) == served


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="regularization"):
        fit_ease(*_csr([[0]]), 1, regularization=0.0)
    with pytest.raises(ValueError, match="item_item_weight"):
        TrainingConfig(item_item_weight=1.0)
    with pytest.raises(ValueError, match="item_item_neighbours"):
        TrainingConfig(item_item_neighbours=-1)
    with pytest.raises(ValueError, match="item_item_whole_rows_up_to"):
        TrainingConfig(item_item_whole_rows_up_to=-1)


def test_each_row_keeps_its_k_weights_of_largest_magnitude_by_ascending_index():
    weights = np.array([[0.0, 0.5, -0.9, 0.1],
                        [0.3, 0.0, -0.05, 0.6],
                        [-0.4, 0.1, 0.0, 0.35],
                        [0.15, 0.1, 0.7, 0.0]], np.float32)
    kept = strongest_neighbours(weights, 2)
    np.testing.assert_array_equal(kept.indices, [[1, 2], [0, 3], [0, 3], [0, 2]])
    np.testing.assert_array_equal(kept.dense(), np.where(np.abs(weights) >= 0.15, weights, 0))


@pytest.mark.parametrize("k", [0, 5, 9])
def test_k_of_zero_or_of_the_whole_row_keeps_the_matrix_whole(k):
    weights = np.random.default_rng(1).standard_normal((5, 5)).astype(np.float32)
    kept = strongest_neighbours(weights, k)
    assert kept.indices is None
    np.testing.assert_array_equal(kept.dense(), weights)


def test_served_scores_sum_the_kept_rows_of_each_users_rated_items():
    import tensorflow as tf

    from components.serving.export import neighbour_rows_sum, whole_rows_sum

    rng = np.random.default_rng(2)
    weights = rng.standard_normal((9, 9)).astype(np.float32)
    rated = [[0, 4, 8], [], [3], [1, 2, 5, 6, 7]]
    seen = tf.ragged.constant(rated, dtype=tf.int64)
    for k in (0, 3):
        kept = strongest_neighbours(weights, k)
        expected = np.stack([kept.dense()[items].sum(axis=0) for items in rated])
        scores = (whole_rows_sum(seen, tf.constant(kept.weights)) if kept.indices is None else
                  neighbour_rows_sum(seen, tf.constant(kept.indices), tf.constant(kept.weights),
                                     9))
        np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_a_batch_of_many_users_is_ranked_block_by_block_as_a_whole():
    """top_k_by_blocks scores SCORE_BLOCK_USERS users at a time; a batch of several blocks, the
    last one short and some users with no history, gives each user's own top k, and an empty
    batch an empty [0, k]."""
    import tensorflow as tf

    from components.serving.export import SCORE_BLOCK_USERS, neighbour_rows_sum, top_k_by_blocks

    rng = np.random.default_rng(4)
    items, k = 30, 4
    kept = strongest_neighbours(rng.standard_normal((items, items)).astype(np.float32), 5)
    rated = [list(rng.choice(items, rng.integers(0, 8), replace=False))
             for _ in range(2 * SCORE_BLOCK_USERS + 7)]
    assert any(not history for history in rated)
    seen = tf.ragged.constant(rated, dtype=tf.int64, row_splits_dtype=tf.int64)
    offsets = tf.constant(rng.standard_normal((len(rated), 1)), tf.float32)
    indices, weights = tf.constant(kept.indices), tf.constant(kept.weights)

    def scores(offsets, seen):
        return offsets + neighbour_rows_sum(seen, indices, weights, items)

    top, values = top_k_by_blocks(scores, (offsets, seen), tf.constant(k))
    expected = offsets.numpy() + np.stack([kept.dense()[history].sum(axis=0)
                                           for history in rated])
    np.testing.assert_allclose(values.numpy(), -np.sort(-expected, axis=1)[:, :k],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(expected, top.numpy(), axis=1),
                               values.numpy(), rtol=1e-5, atol=1e-5)
    empty, _ = top_k_by_blocks(scores, (offsets[:0], seen[:0]), tf.constant(k))
    assert empty.shape == (0, k)
