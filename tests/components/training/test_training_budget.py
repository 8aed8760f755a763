"""A run's budget of examples seen: larger data trains fewer epochs, never none."""

import pytest

from components.training.trainer import TrainingConfig, budgeted_epochs


@pytest.mark.parametrize("epochs, examples, budget, trained", [
    (8, 79_830, 20_000_000, 8),  # ML-100K's train split: the budget does not bind
    (8, 800_167, 20_000_000, 8),  # -1M's
    (8, 8_000_043, 20_000_000, 2),  # -10M's
    (2, 8_000_043, 20_000_000, 2),  # warm epochs already within it
    (8, 6_000_000, 20_000_000, 3),  # whole epochs only: 3.3 fit
    (8, 30_000_000, 20_000_000, 1),  # larger than the budget: still one
    (50, 8_000_043, 50_000_000, 6),  # the item autoencoder at -10M's shape
])
def test_epochs_within_the_budget(epochs, examples, budget, trained):
    assert budgeted_epochs(epochs, examples, budget) == trained


@pytest.mark.parametrize("name", ["example_budget", "autoencoder_example_budget"])
def test_a_budget_must_be_positive(name):
    with pytest.raises(ValueError, match=name):
        TrainingConfig(**{name: 0})
