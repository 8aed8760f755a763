"""Top-k selection and ranking metrics, checked against hand-computed values."""

import math

import numpy as np
import pytest

from components.evaluation.ranking_metrics import PADDING, ranking_metrics, top_k


def _reference_top_k(scores, k, exclude):
    """Full sort per user: descending score, then ascending index; excluded items dropped."""
    result = np.full((len(scores), k), PADDING)
    for user, row in enumerate(scores):
        candidates = [i for i in np.lexsort((np.arange(len(row)), -row)) if i not in exclude[user]]
        result[user, :len(candidates[:k])] = candidates[:k]
    return result


def test_top_k_orders_by_descending_score():
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.2, 0.8, 0.6]])
    assert top_k(scores, 2).tolist() == [[1, 2], [2, 3]]


def test_top_k_breaks_ties_by_lower_index():
    scores = np.array([[1, 3, 3, 2, 3], [0, 5, 5, 5, 5], [0, 0, 0, 0, 0]])
    assert top_k(scores, 2).tolist() == [[1, 2], [1, 2], [0, 1]]
    assert top_k(scores, 4).tolist() == [[1, 2, 4, 3], [1, 2, 3, 4], [0, 1, 2, 3]]


def test_top_k_matches_a_full_sort_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(60, 40)).astype(np.float32)
    exclude = [rng.choice(40, size=rng.integers(0, 39), replace=False) for _ in range(60)]
    for k in (1, 5, 10, 40):
        assert np.array_equal(top_k(scores, k, exclude), _reference_top_k(scores, k, exclude))


def test_top_k_never_returns_excluded_items_in_any_exclusion_form():
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    expected = [[1, 3], [2, 1]]
    assert top_k(scores, 2, [[0, 2], [3]]).tolist() == expected
    mask = np.array([[True, False, True, False], [False, False, False, True]])
    assert top_k(scores, 2, mask).tolist() == expected
    sparse = pytest.importorskip("scipy.sparse")
    # A train ratings matrix: nonzero ratings mark seen items.
    assert top_k(scores, 2, sparse.csr_matrix(mask * 4.0)).tolist() == expected


def test_top_k_pads_when_fewer_than_k_candidates():
    scores = np.array([[0.5, 0.7, 0.1], [0.2, -np.inf, 0.3]])
    # User 0: item 1 excluded; user 1: a -inf score counts as excluded.
    assert top_k(scores, 3, [[1], []]).tolist() == [[0, 2, PADDING], [2, 0, PADDING]]
    assert top_k(scores, 5).tolist() == [[1, 0, 2, PADDING, PADDING],
                                     [2, 0, PADDING, PADDING, PADDING]]
    assert top_k(scores, 2, np.ones((2, 3), dtype=bool)).tolist() == [[PADDING] * 2] * 2


def test_top_k_in_chunks_equals_all_at_once_and_leaves_scores_alone():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(100, 50))
    original = scores.copy()
    exclude = [rng.choice(50, size=5, replace=False) for _ in range(100)]
    whole = top_k(scores, 10, exclude)
    chunks = [top_k(scores[a:a + 30], 10, exclude[a:a + 30]) for a in range(0, 100, 30)]
    assert np.array_equal(whole, np.concatenate(chunks))
    assert np.array_equal(scores, original)


def test_top_k_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        top_k(np.array([[0.1, np.nan]]), 1)
    with pytest.raises(ValueError, match="k must be"):
        top_k(np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="shape"):
        top_k(np.zeros((2, 3)), 1, np.zeros((2, 4), dtype=bool))
    with pytest.raises(ValueError, match="users"):
        top_k(np.zeros((2, 3)), 1, [[0]])


def test_perfect_ranking_scores_one_everywhere():
    metrics = ranking_metrics(np.array([[4, 2, 7], [0, 1, 2]]), [[2, 4, 7], [1, 2, 0]], k=3)
    assert metrics == {"ndcg@3": 1.0, "precision@3": 1.0, "recall@3": 1.0, "map@3": 1.0,
                       "map": 1.0}


def test_hits_at_known_ranks():
    # More relevant items (6) than k = 4; hits at ranks 2 and 4.
    metrics = ranking_metrics(np.array([[1, 10, 2, 11]]), [[10, 11, 12, 13, 14, 15]], k=4)
    dcg = 1 / math.log2(2 + 1) + 1 / math.log2(4 + 1)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert metrics["ndcg@4"] == pytest.approx(dcg / idcg)
    assert metrics["precision@4"] == pytest.approx(2 / 4)
    assert metrics["recall@4"] == pytest.approx(2 / 6)
    # Precision at the hits: 1/2 at rank 2, 2/4 at rank 4.
    assert metrics["map"] == pytest.approx((1 / 2 + 2 / 4) / 6)
    assert metrics["map@4"] == pytest.approx((1 / 2 + 2 / 4) / 4)


def test_user_with_fewer_relevant_items_than_k():
    # 2 relevant items, k = 5; hits at ranks 1 and 3. The ideal DCG stops at 2 items.
    metrics = ranking_metrics(np.array([[3, 1, 8, 2, 4]]), [[8, 3]], k=5)
    dcg = 1 / math.log2(1 + 1) + 1 / math.log2(3 + 1)  # 1 + 0.5
    idcg = 1 / math.log2(1 + 1) + 1 / math.log2(2 + 1)
    assert metrics["ndcg@5"] == pytest.approx(dcg / idcg)
    assert metrics["ndcg@5"] == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert metrics["precision@5"] == pytest.approx(2 / 5)
    assert metrics["recall@5"] == pytest.approx(1.0)
    assert metrics["map"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert metrics["map@5"] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_users_without_relevant_items_are_left_out_of_the_averages():
    recommended = np.array([[3, 1, 8, 2], [0, 1, 2, 3], [1, 10, 2, 11]])
    relevant = [[3, 8], [], [10, 11, 12, 13, 14, 15]]
    metrics = ranking_metrics(recommended, relevant, k=4)
    assert metrics == ranking_metrics(recommended[[0, 2]], [relevant[0], relevant[2]], k=4)
    assert metrics["precision@4"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert metrics["recall@4"] == pytest.approx((1 + 2 / 6) / 2)
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 6) / 2)
    with pytest.raises(ValueError, match="no user"):
        ranking_metrics(recommended[[1]], [[]], k=4)


def test_padding_never_hits():
    # User 1's padding must not match user 0's item 9 (pairs are looked up by user * width + item).
    recommended = np.array([[5, PADDING, PADDING], [PADDING, PADDING, PADDING]])
    metrics = ranking_metrics(recommended, [[5, 9], [2]], k=3)
    assert metrics["precision@3"] == pytest.approx((1 / 3 + 0) / 2)
    assert metrics["recall@3"] == pytest.approx((1 / 2 + 0) / 2)
    # Fewer columns than k count as padding.
    assert ranking_metrics(recommended[:, :1], [[5, 9], [2]], k=3) == metrics


def test_duplicate_relevant_items_count_once_and_keys_use_k():
    metrics = ranking_metrics(np.array([[7, 1]]), [[7, 7, 1]], k=2)
    assert sorted(metrics) == ["map", "map@2", "ndcg@2", "precision@2", "recall@2"]
    assert metrics["recall@2"] == 1.0
