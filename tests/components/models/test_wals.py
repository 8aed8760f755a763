"""WALS recovers planted structure in both regimes, descends its objective and is reproducible."""

import numpy as np
import pytest

from components.models.wals import WalsConfig, WalsFactors, fit_wals, iterate_wals, wals_loss

USERS, ITEMS = 60, 50


def _rmse(factors, users, items, ratings):
    return float(np.sqrt(np.mean((factors.predict(users, items) - ratings) ** 2)))


@pytest.fixture(scope="module")
def low_rank():
    """Rank 3 + biases + small noise, 40% observed; (train, test) as (users, items, ratings)."""
    rng = np.random.default_rng(0)
    full = (3.0 + rng.normal(0, 0.7, (USERS, 1)) + rng.normal(0, 0.7, (1, ITEMS))
            + rng.normal(0, 0.7, (USERS, 3)) @ rng.normal(0, 0.7, (3, ITEMS)))
    users, items = np.nonzero(rng.random((USERS, ITEMS)) < 0.4)
    ratings = full[users, items] + rng.normal(0, 0.1, len(users))
    test = rng.random(len(users)) < 0.2
    return ((users[~test], items[~test], ratings[~test]),
            (users[test], items[test], ratings[test]))


@pytest.fixture(scope="module")
def planted_groups():
    """Users interact mostly with their group's items; one interaction per user is held out."""
    rng = np.random.default_rng(1)
    user_group, item_group = rng.integers(0, 3, USERS), rng.integers(0, 3, ITEMS)
    interacted = rng.random((USERS, ITEMS)) < np.where(
        user_group[:, None] == item_group[None, :], 0.5, 0.03)
    held_out = np.array([rng.choice(np.nonzero(row)[0]) for row in interacted])
    train = interacted.copy()
    train[np.arange(USERS), held_out] = False
    users, items = np.nonzero(train)
    ratings = rng.integers(1, 6, len(users)).astype(float)  # unrelated to the groups
    return (users, items, ratings), interacted, held_out


def test_explicit_regime_recovers_held_out_ratings(low_rank):
    (users, items, ratings), test = low_rank
    wals = fit_wals(users, items, ratings, USERS, ITEMS,
                    WalsConfig(dim=3, regularization=0.1, iterations=10))
    biases = fit_wals(users, items, ratings, USERS, ITEMS, WalsConfig(dim=0))
    global_mean = float(np.sqrt(np.mean((ratings.mean() - test[2]) ** 2)))

    assert wals.global_mean == pytest.approx(ratings.mean())
    assert _rmse(biases, *test) < 0.8 * global_mean
    assert _rmse(wals, *test) < 0.3 * _rmse(biases, *test)


def test_implicit_regime_ranks_held_out_positives_first(planted_groups):
    (users, items, ratings), interacted, held_out = planted_groups

    def auc(config):
        scores = fit_wals(users, items, ratings, USERS, ITEMS, config).scores(np.arange(USERS))
        positive = scores[np.arange(USERS), held_out]
        return np.mean([np.mean(scores[u, ~interacted[u]] < positive[u]) for u in range(USERS)])

    implicit = auc(WalsConfig(dim=3, regularization=0.1, unobserved_weight=0.1))
    assert implicit > 0.8
    # Fitting only the observed (here random) ratings says nothing about what users pick.
    assert auc(WalsConfig(dim=3, regularization=0.1, unobserved_weight=0.0)) < implicit - 0.2


CONFIGS = {
    "explicit with biases": WalsConfig(dim=4, regularization=0.5, iterations=8),
    "explicit without biases": WalsConfig(dim=4, regularization=0.5, iterations=8,
                                          fit_biases=False),
    "implicit with biases, weighted": WalsConfig(
        dim=4, regularization=0.5, iterations=8, unobserved_weight=0.2, rating_weight=0.5,
        popularity_exponent=-0.5),
    "implicit without biases": WalsConfig(dim=4, regularization=0.5, iterations=8,
                                          unobserved_weight=0.2, fit_biases=False),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_objective_never_increases(low_rank, config):
    (users, items, ratings), _ = low_rank
    losses = [wals_loss(factors, users, items, ratings, config)
              for factors in iterate_wals(users, items, ratings, USERS, ITEMS, config)]

    assert len(losses) == config.iterations and np.all(np.isfinite(losses))
    assert all(after <= before * (1 + 1e-12) for before, after in zip(losses, losses[1:]))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_loss_matches_the_dense_objective(low_rank, config):
    """The Gramian shortcut for the unobserved cells equals summing every cell."""
    (users, items, ratings), _ = low_rank
    factors = fit_wals(users, items, ratings, USERS, ITEMS, config)
    predicted = factors.scores(np.arange(USERS))
    weights = np.full((USERS, ITEMS), config.unobserved_weight)
    targets = np.zeros((USERS, ITEMS))
    counts = np.bincount(items, minlength=ITEMS)
    weights[users, items] = ((config.observed_weight + config.rating_weight * ratings)
                             * (counts[items] / counts[items].mean()) ** config.popularity_exponent)
    targets[users, items] = ratings if config.unobserved_weight == 0 else 1.0
    penalty = sum(np.sum(x ** 2) for x in (factors.user_factors, factors.item_factors,
                                           factors.user_bias, factors.item_bias))
    dense = np.sum(weights * (targets - predicted) ** 2) + config.regularization * penalty

    assert wals_loss(factors, users, items, ratings, config) == pytest.approx(dense, rel=1e-10)


def test_chunked_solve_matches_unchunked(low_rank):
    (users, items, ratings), _ = low_rank
    config = CONFIGS["implicit with biases, weighted"]
    whole = fit_wals(users, items, ratings, USERS, ITEMS, config)
    # 7 rows or entries at a time: many chunks, and rows split across entry blocks.
    chunked = fit_wals(users, items, ratings, USERS, ITEMS,
                       WalsConfig(**{**vars(config), "chunk_rows": 7}))

    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), atol=1e-9)


def test_deterministic_for_a_fixed_seed(low_rank):
    (users, items, ratings), _ = low_rank
    first, second, other = (fit_wals(users, items, ratings, USERS, ITEMS,
                                     WalsConfig(dim=4, iterations=3, seed=seed))
                            for seed in (5, 5, 6))

    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert not np.array_equal(first.item_factors, other.item_factors)


def test_scores_agree_with_predict_and_unseen_users_get_the_item_baseline(low_rank):
    (users, items, ratings), _ = low_rank
    seen = users < USERS - 1  # the last user has no ratings
    factors = fit_wals(users[seen], items[seen], ratings[seen], USERS, ITEMS,
                       WalsConfig(dim=4, iterations=3))
    scores = factors.scores(np.arange(USERS))

    assert isinstance(factors, WalsFactors) and scores.shape == (USERS, ITEMS)
    np.testing.assert_allclose(scores[users, items], factors.predict(users, items))
    np.testing.assert_allclose(scores[-1], factors.global_mean + factors.item_bias)


@pytest.mark.parametrize("users, items, ratings, problem", [
    ([0, 0], [1, 1], [3.0, 4.0], "only once"),
    ([0, USERS], [1, 1], [3.0, 4.0], "must lie in"),
    ([0, 1], [1], [3.0, 4.0], "equal length"),
    ([0, 1], [1, 1], [3.0, -4.0], "non-negative"),
])
def test_bad_observations_are_refused(users, items, ratings, problem):
    with pytest.raises(ValueError, match=problem):
        fit_wals(np.array(users), np.array(items), np.array(ratings), USERS, ITEMS,
                 WalsConfig(dim=2, rating_weight=1.0))


@pytest.mark.parametrize("field, value", [
    ("dim", -1), ("regularization", 0.0), ("unobserved_weight", -0.1), ("iterations", 0),
    ("chunk_rows", 0),
])
def test_bad_configs_are_refused(field, value):
    with pytest.raises(ValueError):
        WalsConfig(**{field: value})
