"""EASE's closed form against the ridge regression it solves, column by column."""

import numpy as np
import pytest

from components.item_item import fit_ease
from components.trainer import TrainingConfig


def _csr(rows):
    splits = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return splits, np.concatenate([np.asarray(r, np.int64) for r in rows])


def test_each_column_is_the_ridge_regression_on_the_other_items():
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


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="regularization"):
        fit_ease(*_csr([[0]]), 1, regularization=0.0)
    with pytest.raises(ValueError, match="item_item_weight"):
        TrainingConfig(item_item_weight=1.0)
