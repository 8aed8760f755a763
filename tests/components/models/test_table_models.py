"""Popularity, content and WALS as the Trainer fits them, on synthetic data, judged by the
same top-k metrics as the benchmark; and the tables they hand to the serving signatures."""

import csv
import os

import numpy as np
import pytest

from components import features as F
from components.evaluation.ranking_metrics import ranking_metrics, top_k
from components.models.content import fit_content
from components.models.popularity import fit_popularity
from components.models.tables import TableModel, regularized_biases
from components.training.catalog import Catalog
from components.training.trainer import TrainingConfig, fit_wals_tables
from data import raw_format as R
from data import splits, synthetic

K = 10


def _rows(folder, name):
    with open(os.path.join(folder, name), newline="") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A Catalog of the train part of a stratified split, and the test items per user."""
    folder = synthetic.generate(str(tmp_path_factory.mktemp("data")), 300, 400, 20000, seed=3)
    ratings = _rows(folder, R.RATINGS_FILE)
    users = {row[0]: row for row in _rows(folder, R.USERS_FILE)}
    items = {row[0]: row for row in _rows(folder, R.ITEMS_FILE)}
    user_ids = sorted(users)
    item_ids = sorted(items)
    genres = sorted({g for row in items.values() for g in row[3].split("|")})
    u = np.array([user_ids.index(r[0]) for r in ratings])
    i = np.array([item_ids.index(r[1]) for r in ratings])
    r = np.array([float(x[2]) for x in ratings], np.float32)
    is_test = splits.stratified_by_item(i)
    train_u, train_i, train_r = u[~is_test], i[~is_test], r[~is_test]
    order = np.lexsort((train_i, train_u))
    counts = np.bincount(train_u, minlength=len(user_ids) + 1)
    occupations = sorted({row[3] for row in users.values()})
    catalog = Catalog(
        user_features={
            F.AGE_BUCKET: np.digitize([int(users[x][1]) for x in user_ids], F.AGE_BOUNDARIES),
            F.GENDER_INDEX: np.array([users[x][2] == "F" for x in user_ids], np.int64),
            F.OCCUPATION_INDEX: np.array([occupations.index(users[x][3]) for x in user_ids]),
            F.ZIP_PREFIX_INDEX: np.zeros(len(user_ids), np.int64)},
        item_year_buckets=np.zeros(len(item_ids), np.int64),
        item_genres=[np.array([genres.index(g) for g in items[x][3].split("|")])
                     for x in item_ids],
        item_title_tokens=[np.zeros(0, np.int64)] * len(item_ids),
        seen_splits=np.concatenate([[0], np.cumsum(counts)]),
        seen_items=train_i[order], seen_ratings=train_r[order],
        popularity=np.bincount(train_i, minlength=len(item_ids)) / len(train_i),
        mean_rating=float(train_r.mean()), num_ratings=len(train_r))
    relevant = {}
    for user, item in zip(u[is_test], i[is_test]):
        relevant.setdefault(user, []).append(item)
    return catalog, relevant, len(genres) + 1, (u[is_test], i[is_test], r[is_test])


def _ndcg(tables: TableModel, catalog: Catalog, relevant) -> float:
    users = np.array(sorted(relevant))
    scores = tables.rank_user_vectors[users] @ tables.rank_item_vectors.T + tables.item_rank_biases
    seen = [catalog.seen_items[catalog.seen_splits[x]:catalog.seen_splits[x + 1]] for x in users]
    metrics = ranking_metrics(top_k(scores, K, seen), [np.array(relevant[x]) for x in users], K)
    return metrics[f"ndcg@{K}"]


def _rmse(tables: TableModel, test) -> float:
    users, items, ratings = test
    return float(np.sqrt(np.mean((np.clip(tables.ratings(users, items), 1, 5) - ratings) ** 2)))


@pytest.fixture(scope="module")
def fitted(split):
    catalog, _, num_genres, _ = split
    return {"popularity": fit_popularity(catalog),
            "content": fit_content(catalog, num_genres),
            "wals": fit_wals_tables(TrainingConfig(model="wals"), catalog)}


def test_popularity_ranks_by_training_counts(split, fitted):
    catalog = split[0]
    tables = fitted["popularity"]
    scores = tables.rank_user_vectors[:1] @ tables.rank_item_vectors.T + tables.item_rank_biases
    assert np.argmax(scores[0]) == np.argmax(catalog.popularity)


def test_wals_beats_popularity_on_ranking_and_rating(split, fitted):
    catalog, relevant, _, test = split
    assert _ndcg(fitted["wals"], catalog, relevant) > 1.1 * _ndcg(
        fitted["popularity"], catalog, relevant)
    assert _rmse(fitted["wals"], test) < _rmse(fitted["popularity"], test)


def test_content_ratings_beat_the_bias_baseline_it_builds_on(split, fitted):
    catalog, _, _, test = split
    mean, user_biases, item_biases = regularized_biases(catalog)
    users, items, ratings = test
    biases_only = np.clip(mean + user_biases[users] + item_biases[items], 1, 5)
    assert _rmse(fitted["content"], test) < np.sqrt(np.mean((biases_only - ratings) ** 2))


def test_content_user_vectors_are_rating_weighted_genre_tastes(split, fitted):
    catalog, _, num_genres, _ = split
    tables = fitted["content"]
    assert tables.user_vectors.shape == (catalog.num_users, num_genres)
    norms = np.linalg.norm(tables.user_vectors, axis=1)
    np.testing.assert_allclose(norms, norms[0], rtol=1e-5)  # unit tastes, one common scale
    top_genre = np.argmax(tables.user_vectors[0])
    rated = catalog.seen_items[catalog.seen_splits[0]:catalog.seen_splits[1]]
    weights = catalog.seen_ratings[catalog.seen_splits[0]:catalog.seen_splits[1]]
    expected = np.zeros(num_genres)
    for item, weight in zip(rated, weights):
        expected[catalog.item_genres[item]] += weight
    assert top_genre == np.argmax(expected)


def test_unknown_ids_fall_back_to_zero_rows_in_the_rank_tables(fitted):
    for tables in fitted.values():
        assert tables.rank_user_vectors.shape[1] == tables.rank_item_vectors.shape[1] >= 1
