"""Train/test splits of the published evaluation protocols, as masks over ratings.csv rows.

Each function returns `is_test`, a boolean array over the ratings rows in file order: train is
`~is_test`, so the two sets are disjoint and complete by construction. Same arguments, same mask.

Sizes use round-half-up (`floor(x + 0.5)`) everywhere. Python's round() and np.round() round
halves to even, which Microsoft Recommenders inherits from round(); the two differ only at exact
halves (e.g. 0.75 * 6 = 4.5 train ratings: round() gives 4, this module 5).
"""

import numpy as np


def _round_half_up(x):
    return np.floor(x + 0.5).astype(np.int64)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")


def canonical_fold(num_ratings: int, fold: int, folds: int = 5) -> np.ndarray:
    """Fold `fold` (1-based) of GroupLens' mku.sh: the fold-th consecutive chunk of rows is test.

    mku.sh builds uK.test from lines (K-1)*20000+1 .. K*20000 of u.data in its original order
    (it only sorts the output files), so the ratings file must keep u.data's line order. Chunk
    boundaries are (K-1)*n//folds and K*n//folds: exactly GroupLens' folds for 100,000 ratings
    and sizes differing by at most one otherwise.
    """
    if not 1 <= fold <= folds:
        raise ValueError(f"fold must be in 1..{folds}, got {fold}")
    is_test = np.zeros(num_ratings, dtype=bool)
    is_test[(fold - 1) * num_ratings // folds:fold * num_ratings // folds] = True
    return is_test


def stratified_by_item(item_ids: np.ndarray, train_fraction: float = 0.75,
                       seed: int = 42) -> np.ndarray:
    """Microsoft Recommenders' MovieLens benchmark split (python_stratified_split, by item).

    Each item's ratings are shuffled and the first round_half_up(train_fraction * n) train, the
    rest test. The shuffle comes from np.random.default_rng(seed), not pandas' sample() as in
    Microsoft Recommenders, so this is the same protocol but not the same rows.
    """
    _check_fraction("train_fraction", train_fraction)
    item_ids = np.asarray(item_ids)
    _, item_index, counts = np.unique(item_ids, return_inverse=True, return_counts=True)
    # A random permutation, then a stable sort by item: each item's rows in shuffled order.
    order = np.random.default_rng(seed).permutation(len(item_ids))
    order = order[np.argsort(item_index[order], kind="stable")]
    group_start = np.cumsum(counts) - counts
    position = np.arange(len(item_ids)) - np.repeat(group_start, counts)
    num_train = _round_half_up(train_fraction * counts)
    is_test = np.empty(len(item_ids), dtype=bool)
    is_test[order] = position >= np.repeat(num_train, counts)
    return is_test


def held_out_ids(ids: np.ndarray, fraction: float = 0.2, seed: int = 42) -> np.ndarray:
    """Holds out round_half_up(fraction * distinct ids) ids entirely: all their rows are test.

    Ids are drawn with np.random.default_rng(seed) from the sorted distinct ids, so the choice
    does not depend on row order.
    """
    _check_fraction("fraction", fraction)
    distinct, index = np.unique(np.asarray(ids), return_inverse=True)
    held_out = np.random.default_rng(seed).choice(
        len(distinct), size=_round_half_up(fraction * len(distinct)), replace=False)
    return np.isin(index, held_out)


def cold_start_users(user_ids: np.ndarray, fraction: float = 0.2, seed: int = 42) -> np.ndarray:
    """New users: a share of the users held out with every rating (held_out_ids)."""
    return held_out_ids(user_ids, fraction, seed)


def cold_items(item_ids: np.ndarray, fraction: float = 0.2, seed: int = 42) -> np.ndarray:
    """New movies: a share of the items held out with every rating (held_out_ids); their
    metadata stays in items.csv."""
    return held_out_ids(item_ids, fraction, seed)


def temporal(timestamps: np.ndarray, train_fraction: float = 0.8) -> np.ndarray:
    """The earliest round_half_up(train_fraction * n) ratings train, the rest test.

    A stable sort breaks timestamp ties at the boundary by file order (earlier rows train), so
    the train size is exact even when many ratings share the boundary timestamp.
    """
    _check_fraction("train_fraction", train_fraction)
    order = np.argsort(np.asarray(timestamps), kind="stable")
    is_test = np.zeros(len(order), dtype=bool)
    is_test[order[_round_half_up(train_fraction * len(order)):]] = True
    return is_test


def leave_last(user_ids: np.ndarray, timestamps: np.ndarray, per_user: int = 10) -> np.ndarray:
    """Each user's latest `per_user` ratings are test (all but the earliest one for a user with
    no more than that): what a model retrained on the past faces next.

    A stable sort by (user, timestamp) breaks ties by file order: later rows are the latest.
    """
    if per_user < 1:
        raise ValueError(f"per_user must be at least 1, got {per_user}")
    _, user_index, counts = np.unique(np.asarray(user_ids), return_inverse=True,
                                      return_counts=True)
    order = np.lexsort((np.asarray(timestamps), user_index))
    group_start = np.cumsum(counts) - counts
    position = np.arange(len(order)) - np.repeat(group_start, counts)
    num_train = np.maximum(counts - per_user, 1)
    is_test = np.empty(len(order), dtype=bool)
    is_test[order] = position >= np.repeat(num_train, counts)
    return is_test
