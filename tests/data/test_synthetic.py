"""The synthetic data is valid, deterministic, MovieLens-shaped and carries learnable signal."""

import csv
import os

import numpy as np
import pytest

from components.evaluation.ranking_metrics import ranking_metrics, top_k
from data import splits, synthetic
from data.movielens import GENRES
from data.raw_format import ITEMS_FILE, RATINGS_FILE, USERS_FILE
from data.validate import validate_folder

USERS, ITEMS, RATINGS = 300, 400, 20000


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("synthetic")), USERS, ITEMS, RATINGS)


def _rows(folder, name):
    with open(os.path.join(folder, name), newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def _ratings(folder):
    """(user, item, rating, timestamp) as an int array, in file order."""
    return np.array(_rows(folder, RATINGS_FILE), dtype=np.int64)


def _bytes(folder):
    result = {}
    for name in (RATINGS_FILE, USERS_FILE, ITEMS_FILE):
        with open(os.path.join(folder, name), "rb") as handle:
            result[name] = handle.read()
    return result


def _split(ratings):
    test = np.random.default_rng(1).random(len(ratings)) < 0.2
    return ratings[~test], ratings[test]


def _shrunk_means(keys, values, size, shrinkage=10.0):
    return (np.bincount(keys, weights=values, minlength=size)
            / (np.bincount(keys, minlength=size) + shrinkage))


def _rmse(truth, prediction):
    return float(np.sqrt(np.mean((truth - prediction) ** 2)))


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    sizes = dict(num_users=50, num_items=60, num_ratings=1000)
    first = _bytes(synthetic.generate(str(tmp_path / "a"), seed=7, **sizes))
    assert first == _bytes(synthetic.generate(str(tmp_path / "b"), seed=7, **sizes))
    other = _bytes(synthetic.generate(str(tmp_path / "c"), seed=8, **sizes))
    assert all(first[name] != other[name] for name in first)


def test_valid_with_requested_counts(folder):
    summary = validate_folder(folder)
    assert (summary.ratings, summary.users, summary.items) == (RATINGS, USERS, ITEMS)


def test_values_look_like_movielens(folder):
    users = _rows(folder, USERS_FILE)
    assert [u[0] for u in users] == [str(i) for i in range(1, USERS + 1)]
    assert all(7 <= int(u[1]) <= 73 for u in users)
    assert {u[2] for u in users} == {"M", "F"}
    assert {u[3] for u in users} <= set(synthetic.OCCUPATIONS)
    assert all(len(u[4]) == 5 and u[4].isdigit() for u in users)

    items = _rows(folder, ITEMS_FILE)
    assert [i[0] for i in items] == [str(i) for i in range(1, ITEMS + 1)]
    assert all(i[1] == f"Synthetic Movie {i[0]}" for i in items)
    assert all(1920 <= int(i[2]) <= 1998 for i in items)
    genres = [i[3].split("|") for i in items]
    assert all(g and set(g) <= set(GENRES) for g in genres)
    assert 1.3 < np.mean([len(g) for g in genres]) < 2.2

    ratings = _ratings(folder)
    assert np.bincount(ratings[:, 0], minlength=USERS + 1)[1:].min() >= 5
    assert len(np.unique(ratings[:, 0] * (ITEMS + 1) + ratings[:, 1])) == RATINGS
    timestamps = ratings[:, 3]
    assert (np.diff(timestamps) >= 0).all()
    assert synthetic.START_TIME <= timestamps[0]
    assert timestamps[-1] <= synthetic.START_TIME + synthetic.PERIOD
    assert timestamps[-1] - timestamps[0] > 0.9 * synthetic.PERIOD


def test_rating_distribution_is_realistic(folder):
    stars = _ratings(folder)[:, 2]
    assert set(stars.tolist()) == {1, 2, 3, 4, 5}
    assert 3.3 < stars.mean() < 3.7


def test_popularity_and_activity_are_skewed(folder):
    ratings = _ratings(folder)
    per_item = np.sort(np.bincount(ratings[:, 1], minlength=ITEMS + 1)[1:])[::-1]
    assert per_item[:ITEMS // 10].sum() / RATINGS > 0.25  # uniform exposure would give 0.10
    per_user = np.sort(np.bincount(ratings[:, 0], minlength=USERS + 1)[1:])[::-1]
    assert per_user[:USERS // 10].sum() / RATINGS > 0.2


def test_biases_and_side_features_carry_signal(folder):
    train, test = _split(_ratings(folder))
    mean = train[:, 2].mean()
    item_bias = _shrunk_means(train[:, 1], train[:, 2] - mean, ITEMS + 1)
    residual = train[:, 2] - mean - item_bias[train[:, 1]]
    user_bias = _shrunk_means(train[:, 0], residual, USERS + 1)

    def biased(rows):
        return mean + item_bias[rows[:, 1]] + user_bias[rows[:, 0]]

    global_rmse = _rmse(test[:, 2], mean)
    item_rmse = _rmse(test[:, 2], mean + item_bias[test[:, 1]])
    bias_rmse = _rmse(test[:, 2], biased(test))
    assert item_rmse < 0.95 * global_rmse
    assert bias_rmse < 0.98 * item_rmse

    # Occupation x genre means of what the biases leave over predict held-out ratings too.
    occupation = np.array([0] + [synthetic.OCCUPATIONS.index(u[3])
                                 for u in _rows(folder, USERS_FILE)])
    genre_share = np.zeros((ITEMS + 1, len(GENRES)))
    for item in _rows(folder, ITEMS_FILE):
        names = item[3].split("|")
        genre_share[int(item[0]), [GENRES.index(g) for g in names]] = 1 / len(names)
    totals = np.zeros((len(synthetic.OCCUPATIONS), len(GENRES)))
    weights = np.zeros_like(totals)
    residual = train[:, 2] - biased(train)
    np.add.at(totals, occupation[train[:, 0]], genre_share[train[:, 1]] * residual[:, None])
    np.add.at(weights, occupation[train[:, 0]], genre_share[train[:, 1]])
    effect = totals / (weights + 20.0)
    side = (genre_share[test[:, 1]] * effect[occupation[test[:, 0]]]).sum(axis=1)
    # Users pick items they like, so each item's raters are its fans and the item biases absorb
    # much of the demographic taste (as on MovieLens): what is left is small but real.
    assert _rmse(test[:, 2], biased(test) + side) < 0.995 * bias_rmse


def _ndcg(scores, train, relevant, k=10):
    return ranking_metrics(top_k(scores, k, exclude=train), relevant, k)[f"ndcg@{k}"]


def test_which_items_a_user_rates_is_learnable(folder):
    """Users rate what they expected to like: a personalized ranker fitted on the train part of
    a stratified split finds held-out items clearly better than popularity, as on MovieLens, and
    popularity in turn beats chance."""
    ratings = _ratings(folder)
    users, items = ratings[:, 0] - 1, ratings[:, 1] - 1
    is_test = splits.stratified_by_item(items)
    train = np.zeros((USERS, ITEMS))
    train[users[~is_test], items[~is_test]] = 1.0
    relevant = [items[is_test & (users == user)] for user in range(USERS)]
    seen = train > 0

    popularity = _ndcg(np.tile(train.sum(axis=0), (USERS, 1)), seen, relevant)
    chance = _ndcg(np.random.default_rng(0).random((USERS, ITEMS)), seen, relevant)
    # EASE (Steck, 2019): each item's column regressed on all other items' columns, ridge
    # penalty 200, in closed form; a user's scores are the predictions from their train items.
    inverse = np.linalg.inv(train.T @ train + 200.0 * np.eye(ITEMS))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    personalized = _ndcg(train @ weights, seen, relevant)
    assert personalized > 1.2 * popularity
    assert popularity > 3.0 * chance


def test_impossible_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError):
        synthetic.generate(str(tmp_path), num_users=10, num_items=50, num_ratings=49)
    with pytest.raises(ValueError):
        synthetic.generate(str(tmp_path), num_users=10, num_items=20, num_ratings=101)
    assert os.listdir(tmp_path) == []


def test_main_writes_the_folder(tmp_path, capsys):
    dest = str(tmp_path / "out")
    synthetic.main([dest, "--users", "20", "--items", "30", "--ratings", "200", "--seed", "3"])
    assert capsys.readouterr().out.strip() == dest
    summary = validate_folder(dest)
    assert (summary.ratings, summary.users, summary.items) == (200, 20, 30)
