"""Top-k recommendation and ranking metrics over the whole catalog, in plain numpy.

The metrics follow Microsoft Recommenders' python_evaluation with binary relevance, so results
compare with their MovieLens benchmark table: every test rating of a user is relevant, users
without relevant items are left out of the averages, and the caller excludes seen (train) items
before ranking.
"""

from typing import Dict, Optional, Sequence, Union

import numpy as np

PADDING = -1  # In top_k's output: fewer than k candidates were left for the user.


def _exclusion_coordinates(exclude, shape):
    """(rows, cols) to exclude, from a mask (nonzero = excluded) or per-user index arrays."""
    if hasattr(exclude, "tocoo") or (isinstance(exclude, np.ndarray) and exclude.dtype == bool):
        if exclude.shape != shape:
            raise ValueError(f"exclude mask has shape {exclude.shape}, scores {shape}")
        return exclude.nonzero()
    if len(exclude) != shape[0]:
        raise ValueError(f"exclude has {len(exclude)} users, scores {shape[0]}")
    cols = [np.asarray(e, dtype=np.intp).ravel() for e in exclude]
    rows = np.repeat(np.arange(shape[0]), [len(c) for c in cols])
    return rows, np.concatenate([np.empty(0, np.intp)] + cols)


def top_k(scores: np.ndarray, k: int,
          exclude: Optional[Union[np.ndarray, Sequence[np.ndarray]]] = None) -> np.ndarray:
    """[num_users, k] item indices by descending score; equal scores rank lower index first.

    `exclude` is a [num_users, num_items] boolean mask (numpy, or any scipy.sparse matrix whose
    nonzeros mark excluded items, e.g. the train ratings) or one index array per user. Excluded
    and -inf-scored items are never returned; rows with fewer than k candidates end in PADDING.
    Selection is O(num_items) per user (only the k best are sorted), so large catalogs are
    best ranked in chunks of users: top_k(scores[a:b], k, exclude[a:b]).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    scores = np.asarray(scores)
    # A float copy: excluded items are set to -inf without touching the caller's scores.
    neg = -np.array(scores, dtype=np.promote_types(scores.dtype, np.float32))
    if np.isnan(neg).any():
        raise ValueError("scores contain NaN")
    if exclude is not None:
        neg[_exclusion_coordinates(exclude, scores.shape)] = np.inf
    num_users, num_items = neg.shape
    kk = min(k, num_items)
    result = np.full((num_users, k), PADDING, dtype=np.int64)
    if kk == 0:
        return result
    # Ascending in neg is descending in score. The kk-th smallest value is the threshold: all
    # items below it are in, and ties at it are filled lowest index first (cumsum counts them).
    threshold = np.partition(neg, kk - 1, axis=1)[:, kk - 1:kk]
    below = neg < threshold
    at = neg == threshold
    needed = kk - below.sum(axis=1, keepdims=True)
    chosen = below | (at & (np.cumsum(at, axis=1, dtype=np.int32) <= needed))
    items = np.nonzero(chosen)[1].reshape(num_users, kk)  # kk per row, ascending index
    chosen_neg = np.take_along_axis(neg, items, axis=1)
    order = np.argsort(chosen_neg, axis=1, kind="stable")  # stable: ties keep index order
    items = np.take_along_axis(items, order, axis=1)
    items[np.take_along_axis(chosen_neg, order, axis=1) == np.inf] = PADDING
    result[:, :kk] = items
    return result


def ranking_metrics(recommended: np.ndarray, relevant: Sequence[np.ndarray],
                    k: int) -> Dict[str, float]:
    """ndcg@k, precision@k, recall@k, map@k and map, averaged over users with relevant items.

    recommended: [num_users, k] item indices, best first (PADDING never hits; columns past k are
    ignored). relevant: each user's relevant item indices (duplicates count once). Definitions
    as in Microsoft Recommenders, with hits the relevant items in the top k, ranked from 1:
      precision@k = hits / k;  recall@k = hits / |relevant|;
      ndcg@k = sum over hits of 1/log2(rank + 1), divided by its best possible value
               sum_{i=1..min(|relevant|, k)} 1/log2(i + 1);
      map = sum over hits of precision@rank, divided by |relevant| (the "MAP" of their older
            benchmark table); map@k = the same sum divided by min(|relevant|, k).
    The top-k arrays are small, so chunked rankings are concatenated and scored in one call.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    recommended = np.asarray(recommended, dtype=np.int64)[:, :k]
    num_users = recommended.shape[0]
    if len(relevant) != num_users:
        raise ValueError(f"relevant has {len(relevant)} users, recommended {num_users}")
    # Membership of (user, item) pairs in one vectorized lookup on keys user * width + item.
    rel_items = [np.asarray(r, dtype=np.int64).ravel() for r in relevant]
    rel_users = np.repeat(np.arange(num_users), [len(r) for r in rel_items])
    rel_items = np.concatenate([np.empty(0, np.int64)] + rel_items)
    width = max(int(recommended.max(initial=0)), int(rel_items.max(initial=0))) + 1
    rel_keys = np.unique(rel_users * width + rel_items)
    num_relevant = np.bincount(rel_keys // width, minlength=num_users)
    hits = (recommended >= 0) & np.isin(np.arange(num_users)[:, None] * width + recommended,
                                        rel_keys)
    hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))  # fewer than k columns: no hits there

    users = num_relevant > 0
    if not users.any():
        raise ValueError("no user has a relevant item")
    hits, num_relevant = hits[users].astype(np.float64), num_relevant[users]
    ranks = np.arange(1, k + 1)
    discounts = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discounts)[np.minimum(num_relevant, k) - 1]
    precision_sum = (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1)
    num_hits = hits.sum(axis=1)
    return {
        f"ndcg@{k}": float(np.mean((hits * discounts).sum(axis=1) / ideal)),
        f"precision@{k}": float(np.mean(num_hits / k)),
        f"recall@{k}": float(np.mean(num_hits / num_relevant)),
        f"map@{k}": float(np.mean(precision_sum / np.minimum(num_relevant, k))),
        "map": float(np.mean(precision_sum / num_relevant)),
    }
