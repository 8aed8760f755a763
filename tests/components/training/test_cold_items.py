"""Items no rating names: which they are, and the content prior of their ranking biases."""

import numpy as np
import pytest

from components import features as F
from components.example_gen.item_catalog import ItemTable
from components.models.tables import TableModel
from components.training.cold_items import (
    calibration,
    cold_items,
    content_matrix,
    content_prior,
    with_cold_items,
)


def test_the_prior_recovers_a_bias_that_content_explains():
    rng = np.random.default_rng(0)
    years = rng.integers(0, 4, 400)
    genres = [rng.choice(6, rng.integers(1, 3), replace=False) for _ in range(400)]
    rows = content_matrix(years, genres, num_year_buckets=4, num_genres=6)
    truth = rng.normal(size=rows.shape[1])
    biases = rows @ truth + rng.normal(0, 0.01, 400)
    cold = content_matrix(np.array([1, 3]), [np.array([0, 2]), np.array([5])], 4, 6)
    np.testing.assert_allclose(content_prior(rows[:300], biases[:300], cold), cold @ truth,
                               atol=0.1)


def test_content_rows_hold_an_intercept_the_year_and_the_genres():
    rows = content_matrix(np.array([2]), [np.array([0, 3])], num_year_buckets=3, num_genres=4)
    assert rows.tolist() == [[1, 0, 0, 1, 1, 0, 0, 1]]


def test_cold_items_are_the_tables_items_outside_the_vocabulary():
    table = ItemTable(["1", "2", "9"], ["A", "B", "New"], np.array([1990, 0, 1998]),
                      [["Drama"], [], ["Sci-Fi"]])
    seen = {}

    def transform(raw):
        seen.update(raw)
        rows = raw[F.ITEM_ID].shape[0]
        return {F.ITEM_INDEX: np.full(rows, 2), F.YEAR_BUCKET: np.ones(rows),
                F.GENRE_INDICES: "sparse", F.TITLE_TOKENS: "sparse", "other": None}

    cold = cold_items(table, ["1", "2"], transform)
    assert cold.item_ids == ["9"] and set(cold.features) == {
        F.ITEM_INDEX, F.YEAR_BUCKET, F.GENRE_INDICES, F.TITLE_TOKENS}
    assert seen[F.ITEM_ID].numpy().tolist() == [[b"9"]]
    assert seen[F.TITLE].numpy().tolist() == [[b"New"]]
    assert seen[F.YEAR].values.numpy().tolist() == [1998]
    assert len(cold_items(table, ["1", "2", "9"], transform)) == 0


@pytest.fixture
def three_known_one_cold():
    """(tables of three known items, their content rows, one cold item's content row)."""
    known = content_matrix(np.array([0, 1, 1]), [np.array([0]), np.array([1]), np.array([0])],
                           2, 2)
    tables = TableModel(global_bias=3.0, user_vectors=np.ones((2, 2), np.float32),
                        user_biases=np.zeros(2, np.float32),
                        item_vectors=np.ones((3, 2), np.float32),
                        item_biases=np.zeros(3, np.float32),
                        item_rank_biases=np.array([1.0, 2.0, 3.0], np.float32))
    cold = content_matrix(np.array([1]), [np.array([0])], 2, 2)
    return tables, known, cold


def test_cold_rows_follow_the_known_items_rank_rows_only(three_known_one_cold):
    tables, known, cold = three_known_one_cold
    extended = with_cold_items(tables, known, cold, np.full((1, 2), 0.5))
    assert extended.rank_item_vectors.shape == (4, 2) and extended.item_vectors.shape == (3, 2)
    assert extended.rank_item_vectors[3].tolist() == [0.5, 0.5]
    assert extended.content_rank_vectors.shape == (4, 2)
    assert len(extended.item_rank_biases) == len(extended.cold_item_rank_biases) == 4
    assert 1.0 < extended.item_rank_biases[3] < 3.0
    assert with_cold_items(tables, known, cold[:0], np.zeros((0, 2))) is tables


def test_calibration_weighs_each_part_by_what_it_predicts_of_the_served_score():
    rng = np.random.default_rng(1)
    content = rng.normal(size=(600, 30))
    prior = rng.normal(size=30)  # one value per item, the same for every user
    served = 0.3 * content + 1.5 * prior + 2.0 + rng.normal(0, 0.01, (600, 30))
    weights, shift = calibration([content, prior], served, rows_per_block=256)
    np.testing.assert_allclose(weights, [0.3, 1.5], atol=0.01)
    assert shift == pytest.approx(2.0, abs=0.01)


def test_each_bias_table_maps_the_content_prior_to_its_own_users_scale(
        three_known_one_cold):
    tables, known, cold = three_known_one_cold
    plain = with_cold_items(tables, known, cold, np.zeros((1, 2)))
    mapped = with_cold_items(tables, known, cold, np.zeros((1, 2)),
                             known_users_map=(2.0, -1.0), strangers_map=(0.5, 3.0))
    assert mapped.item_rank_biases[3] == pytest.approx(2.0 * plain.item_rank_biases[3] - 1.0)
    assert mapped.cold_item_rank_biases[3] == pytest.approx(
        0.5 * plain.cold_item_rank_biases[3] + 3.0)
    assert mapped.item_rank_biases[:3].tolist() == [1.0, 2.0, 3.0]
    assert mapped.cold_item_rank_biases[:3].tolist() == [1.0, 2.0, 3.0]
