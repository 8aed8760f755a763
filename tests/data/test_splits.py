"""The evaluation splits: exact sizes, determinism and the protocols' defining properties."""

import numpy as np
import pytest

from data import splits


def _ratings(num_ratings=5000, num_users=300, num_items=400, seed=0):
    """Skewed user/item ids and timestamps with many ties, as strings like ratings.csv."""
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.5, num_ratings) % num_users
    items = rng.zipf(1.3, num_ratings) % num_items
    timestamps = rng.integers(0, 200, num_ratings)
    return users.astype(str), items.astype(str), timestamps


def test_canonical_folds_are_grouplens_chunks_and_partition_the_rows():
    masks = [splits.canonical_fold(100_000, fold) for fold in range(1, 6)]
    for fold, is_test in enumerate(masks, start=1):
        assert is_test.sum() == 20_000
        # mku.sh: uK.test holds u.data lines (K-1)*20000+1 .. K*20000 (1-based).
        assert np.flatnonzero(is_test).tolist() == list(range((fold - 1) * 20_000, fold * 20_000))
    assert (np.sum(masks, axis=0) == 1).all()


def test_canonical_folds_of_uneven_size_differ_by_at_most_one():
    masks = [splits.canonical_fold(11, fold, folds=3) for fold in range(1, 4)]
    assert [m.astype(int).tolist() for m in masks] == [
        [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
    ]


@pytest.mark.parametrize("fold", [0, 6, -1])
def test_canonical_fold_out_of_range(fold):
    with pytest.raises(ValueError, match="fold"):
        splits.canonical_fold(100, fold)


def test_stratified_by_item_sizes_per_item_are_round_half_up():
    _, items, _ = _ratings()
    is_test = splits.stratified_by_item(items)
    for item in np.unique(items):
        rows = items == item
        n = rows.sum()
        assert (rows & ~is_test).sum() == np.floor(0.75 * n + 0.5)


def test_stratified_by_item_hand_checked_sizes():
    # 2 ratings: 1.5 -> 2 train; 6 ratings: 4.5 -> 5 train (round() would give 4); 1: 0.75 -> 1.
    items = np.array(["a", "b", "b", "a", "b", "b", "b", "c", "b"])
    is_test = splits.stratified_by_item(items, seed=3)
    assert is_test[items == "a"].sum() == 0
    assert is_test[items == "b"].sum() == 1
    assert is_test[items == "c"].sum() == 0


def test_stratified_by_item_is_seeded():
    _, items, _ = _ratings()
    first = splits.stratified_by_item(items, seed=42)
    assert np.array_equal(first, splits.stratified_by_item(items, seed=42))
    assert not np.array_equal(first, splits.stratified_by_item(items, seed=43))


def test_cold_start_users_holds_out_whole_users():
    users, _, _ = _ratings()
    is_test = splits.cold_start_users(users)
    test_users, train_users = set(users[is_test]), set(users[~is_test])
    assert not test_users & train_users
    assert len(test_users | train_users) == len(np.unique(users))
    assert len(test_users) == np.floor(0.2 * len(np.unique(users)) + 0.5)


def test_cold_items_holds_out_whole_items():
    _, items, _ = _ratings()
    is_test = splits.cold_items(items)
    assert not set(items[is_test]) & set(items[~is_test])
    assert len(set(items[is_test])) == np.floor(0.2 * len(np.unique(items)) + 0.5)


def test_cold_start_users_hand_checked():
    # 5 distinct users: 0.2 * 5 = 1 user held out, with all of that user's rows.
    users = np.array(["u1", "u2", "u1", "u3", "u4", "u5", "u1"])
    is_test = splits.cold_start_users(users, seed=0)
    held_out = np.unique(users[is_test])
    assert len(held_out) == 1
    assert np.array_equal(is_test, users == held_out[0])


def test_cold_start_users_is_seeded_and_independent_of_row_order():
    users, _, _ = _ratings()
    first = splits.cold_start_users(users, seed=42)
    assert np.array_equal(first, splits.cold_start_users(users, seed=42))
    assert not np.array_equal(first, splits.cold_start_users(users, seed=43))
    reversed_mask = splits.cold_start_users(users[::-1], seed=42)[::-1]
    assert np.array_equal(first, reversed_mask)


def test_temporal_trains_on_the_past():
    _, _, timestamps = _ratings()
    is_test = splits.temporal(timestamps)
    assert (~is_test).sum() == np.floor(0.8 * len(timestamps) + 0.5)
    assert timestamps[~is_test].max() <= timestamps[is_test].min()
    assert np.array_equal(is_test, splits.temporal(timestamps))


def test_temporal_breaks_boundary_ties_by_file_order():
    # 0.5 * 5 = 2.5 -> 3 train rows: times 1, 2, 2. With 0.4 * 5 = 2 train rows only one of
    # the tied 2s fits, and the earlier row gets it.
    timestamps = np.array([3, 1, 2, 2, 5])
    assert splits.temporal(timestamps, 0.5).tolist() == [True, False, False, False, True]
    assert splits.temporal(timestamps, 0.4).tolist() == [True, False, False, True, True]


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.2])
def test_fractions_out_of_range(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        splits.temporal(np.arange(10), fraction)
    with pytest.raises(ValueError, match="between 0 and 1"):
        splits.stratified_by_item(np.arange(10), fraction)
    with pytest.raises(ValueError, match="between 0 and 1"):
        splits.cold_start_users(np.arange(10), fraction)


def test_leave_last_holds_out_each_users_latest_ratings_keeping_one_to_train_on():
    users, _, timestamps = _ratings()
    is_test = splits.leave_last(users, timestamps, per_user=10)
    for user in np.unique(users):
        rows = np.flatnonzero(users == user)
        test, train = rows[is_test[rows]], rows[~is_test[rows]]
        assert len(test) == min(10, len(rows) - 1)
        if len(test):  # nothing held out is older than anything trained on
            assert timestamps[test].min() >= timestamps[train].max()
    assert splits.leave_last(users, timestamps).tolist() == is_test.tolist()


def test_leave_last_breaks_timestamp_ties_by_file_order():
    is_test = splits.leave_last(np.array(["a"] * 4), np.array([5, 5, 5, 1]), per_user=2)
    assert is_test.tolist() == [False, True, True, False]
