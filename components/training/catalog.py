"""What the exported model must know besides its weights, gathered in one pass over training data.

Each known user's and item's transformed features (to precompute their tower outputs), the
items each user rated (excluded from recommendations), item popularity (the cold fallback)
and the mean rating (the model's starting global bias). Only per-id rows and the rated pairs
are kept, never whole examples.
"""

import dataclasses
from typing import Dict, Iterable, List

import numpy as np
import tensorflow as tf

from components import features as F

USER_COLUMNS = (F.AGE_BUCKET, F.GENDER_INDEX, F.OCCUPATION_INDEX, F.ZIP_PREFIX_INDEX)


@dataclasses.dataclass
class Catalog:
    user_features: Dict[str, np.ndarray]  # [num_users] per user column, by user index
    item_year_buckets: np.ndarray  # [num_items]
    item_genres: List[np.ndarray]  # genre indices of each item
    item_title_tokens: List[np.ndarray]  # title word indices of each item
    seen_splits: np.ndarray  # CSR row splits over users (+1 empty row for unknown users)
    seen_items: np.ndarray  # item indices rated by each user, per the splits
    seen_ratings: np.ndarray  # the rating of each (user, seen item) pair, aligned with seen_items
    popularity: np.ndarray  # [num_items] share of training ratings
    mean_rating: float
    num_ratings: int

    @property
    def num_users(self) -> int:
        return len(self.seen_splits) - 2

    @property
    def num_items(self) -> int:
        return len(self.popularity)

    def pairs(self):
        """(user index, item index, rating) arrays of every training rating, by user."""
        users = np.repeat(np.arange(self.num_users + 1), np.diff(self.seen_splits))
        return users, self.seen_items, self.seen_ratings

    def user_inputs(self) -> Dict[str, tf.Tensor]:
        """Transformed user-side features of every known user, in index order."""
        inputs = {name: tf.constant(values) for name, values in self.user_features.items()}
        inputs[F.USER_INDEX] = tf.range(self.num_users, dtype=tf.int64)
        return inputs

    def item_inputs(self) -> Dict[str, tf.Tensor]:
        """Transformed item-side features of every known item, in index order."""
        return {
            F.ITEM_INDEX: tf.range(self.num_items, dtype=tf.int64),
            F.YEAR_BUCKET: tf.constant(self.item_year_buckets),
            F.GENRE_INDICES: _sparse(self.item_genres),
            F.TITLE_TOKENS: _sparse(self.item_title_tokens),
        }


def _sparse(rows: List[np.ndarray]) -> tf.SparseTensor:
    """[len(rows), None] sparse int64 of each row's values."""
    return tf.RaggedTensor.from_row_lengths(
        np.concatenate([np.zeros(0, np.int64)] + list(rows)).astype(np.int64),
        [len(row) for row in rows]).to_sparse()


def _first_rows(index: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Row numbers of the first occurrence in this batch of each index not filled yet."""
    unique, first = np.unique(index, return_index=True)
    return first[~filled[unique]]


def _fill_sparse_rows(target: List[np.ndarray], sparse: tf.SparseTensor, rows: np.ndarray,
                      items: np.ndarray) -> None:
    """target[item] = the values of the batch's sparse feature in row `rows[i]`, for each
    (row, item) pair (a batch's sparse indices are sorted by row)."""
    sparse_rows, values = sparse.indices.numpy()[:, 0], sparse.values.numpy()
    starts = np.searchsorted(sparse_rows, rows, side="left")
    ends = np.searchsorted(sparse_rows, rows, side="right")
    for item, start, end in zip(items, starts, ends):
        target[item] = values[start:end]


def build_catalog(batches: Iterable, num_users: int, num_items: int) -> Catalog:
    """One pass over (features, label) batches of transformed training examples."""
    user_features = {c: np.zeros(num_users, np.int64) for c in USER_COLUMNS}
    users_filled = np.zeros(num_users + 1, bool)
    items_filled = np.zeros(num_items + 1, bool)
    year_buckets = np.zeros(num_items, np.int64)
    genres: List[np.ndarray] = [np.zeros(0, np.int64)] * num_items
    title_tokens: List[np.ndarray] = [np.zeros(0, np.int64)] * num_items
    pair_users, pair_items, pair_ratings = [], [], []
    rating_sum, count = 0.0, 0
    for features, label in batches:
        users = features[F.USER_INDEX].numpy()
        items = features[F.ITEM_INDEX].numpy()
        known = (users < num_users) & (items < num_items)
        users, items = users[known], items[known]
        rows = np.flatnonzero(known)
        labels = label.numpy()
        pair_users.append(users)
        pair_items.append(items)
        pair_ratings.append(labels[known])
        rating_sum += float(labels.sum())
        count += len(labels)
        new = _first_rows(users, users_filled)
        for column in USER_COLUMNS:
            user_features[column][users[new]] = features[column].numpy()[rows[new]]
        users_filled[users[new]] = True
        new = _first_rows(items, items_filled)
        year_buckets[items[new]] = features[F.YEAR_BUCKET].numpy()[rows[new]]
        _fill_sparse_rows(genres, features[F.GENRE_INDICES], rows[new], items[new])
        _fill_sparse_rows(title_tokens, features[F.TITLE_TOKENS], rows[new], items[new])
        items_filled[items[new]] = True
    users = np.concatenate(pair_users)
    items = np.concatenate(pair_items)
    ratings = np.concatenate(pair_ratings).astype(np.float32)
    order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=num_users + 1)
    return Catalog(
        user_features=user_features,
        item_year_buckets=year_buckets,
        item_genres=genres,
        item_title_tokens=title_tokens,
        seen_splits=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        seen_items=items[order].astype(np.int64),
        seen_ratings=ratings[order],
        popularity=np.bincount(items, minlength=num_items) / max(len(items), 1),
        mean_rating=rating_sum / max(count, 1),
        num_ratings=count,
    )
