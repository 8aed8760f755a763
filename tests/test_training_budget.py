"""A run's budget of examples seen: larger data trains fewer epochs, never none."""

import numpy as np
import pytest

from components.catalog import Catalog
from components.trainer import TrainingConfig, budgeted_epochs, fit_autoencoder, fit_item_item


@pytest.mark.parametrize("epochs, examples, budget, trained", [
    (8, 79_830, 20_000_000, 8),  # ML-100K's train split: the budget does not bind
    (8, 800_167, 20_000_000, 8),  # -1M's
    (8, 8_000_043, 20_000_000, 2),  # -10M's
    (2, 8_000_043, 20_000_000, 2),  # warm epochs already within it
    (8, 6_000_000, 20_000_000, 3),  # whole epochs only: 3.3 fit
    (8, 20_000_000, 20_000_000, 1),  # larger than the budget: still one
    (50, 8_000_043, 50_000_000, 6),  # the item autoencoder at -10M's shape
])
def test_epochs_within_the_budget(epochs, examples, budget, trained):
    assert budgeted_epochs(epochs, examples, budget) == trained


@pytest.mark.parametrize("name", ["example_budget", "autoencoder_example_budget"])
def test_a_budget_must_be_positive(name):
    with pytest.raises(ValueError, match=name):
        TrainingConfig(**{name: 0})


def _catalog(num_users=30, num_items=12) -> Catalog:
    rng = np.random.default_rng(3)
    rated = rng.random((num_users, num_items)) < 0.5
    users, items = np.nonzero(rated)
    counts = rated.sum(axis=1)
    return Catalog(
        user_features={}, item_year_buckets=np.zeros(num_items, np.int64),
        item_genres=[np.zeros(1, np.int64)] * num_items,
        seen_splits=np.concatenate([[0], np.cumsum(counts), [counts.sum()]]),
        seen_items=items, seen_ratings=rng.integers(1, 6, len(items)).astype(np.float32),
        popularity=np.bincount(items, minlength=num_items) / len(items), mean_rating=3.0,
        num_ratings=len(items))


@pytest.mark.parametrize("budget_epochs, trained", [(3, 3), (100, 20)])
def test_the_item_autoencoder_trains_the_epochs_its_budget_allows(budget_epochs, trained):
    catalog = _catalog()
    config = TrainingConfig(autoencoder_hidden=8, autoencoder_epochs=20,
                            autoencoder_example_budget=budget_epochs * catalog.num_ratings)
    assert fit_autoencoder(config, catalog, previous=None, ids=None).epochs == trained


def test_no_share_fits_no_model():
    config = TrainingConfig(autoencoder_share=0.0, item_item_weight=0.0)
    assert fit_autoencoder(config, _catalog(), previous=None, ids=None) is None
    assert fit_item_item(config, _catalog()) is None
