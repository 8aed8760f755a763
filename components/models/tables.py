"""A model as tables over known ids: what every model hands to the serving signatures.

rating(u, i) = global_bias + user_biases[u] + item_biases[i] + ⟨user_vectors[u], item_vectors[i]⟩
rank(u, ·)   = ⟨rank_user_vectors[u], rank_item_vectors⟩ + item_rank_biases
               + Σ_{j rated by u} item_item[j, ·]   (when there is an item-item matrix; each
                                                     row holds j's strongest neighbours)
The rank tables cover the served catalog: the known items, then those no rating names yet
(components/training/cold_items.py); the rating tables the known items only. The rank vectors
default to the rating vectors; WALS fits them separately (implicit regime).
Popularity, content and WALS are exactly this; the hybrid also serves features through its
towers, and exports its known users' and items' tower outputs as these tables.
"""

import dataclasses
from typing import Optional

import numpy as np

from components import features as F
from components.models.item_item import ItemNeighbours
from components.training.catalog import Catalog

DEMOGRAPHICS = (F.AGE_BUCKET, F.GENDER_INDEX, F.OCCUPATION_INDEX)


@dataclasses.dataclass
class TableModel:
    global_bias: float
    user_vectors: np.ndarray  # [num_users, dim]
    user_biases: np.ndarray  # [num_users]
    item_vectors: np.ndarray  # [num_items, dim]
    item_biases: np.ndarray  # [num_items]
    item_rank_biases: np.ndarray  # [num_items]
    rank_user_vectors: Optional[np.ndarray] = None  # [num_users, rank_dim]
    rank_item_vectors: Optional[np.ndarray] = None  # [num_items, rank_dim]
    # Item biases of the ranking for users the model never saw (default: item_rank_biases).
    cold_item_rank_biases: Optional[np.ndarray] = None  # [num_items]
    # Each served item's ranking vector from its content alone (the hybrid's item tower with
    # the id masked): what `similar_items` compares a movie nobody rated with (default: the
    # rank item vectors).
    content_rank_vectors: Optional[np.ndarray] = None  # [items, rank_dim]
    # Known users' rank scores add the rows of the items they rated (models/item_item.py).
    item_item: Optional[ItemNeighbours] = None
    # For a hybrid, whose towers also rate: the tables' share of the served rating of known
    # (user, item) pairs; the towers get the rest, and every pair with an unknown id.
    table_rating_share: float = 1.0

    def __post_init__(self):
        if self.rank_user_vectors is None:
            self.rank_user_vectors, self.rank_item_vectors = self.user_vectors, self.item_vectors
        if self.cold_item_rank_biases is None:
            self.cold_item_rank_biases = self.item_rank_biases
        if self.content_rank_vectors is None:
            self.content_rank_vectors = self.rank_item_vectors

    def ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return (self.global_bias + self.user_biases[users] + self.item_biases[items]
                + np.sum(self.user_vectors[users] * self.item_vectors[items], axis=1))


def regularized_biases(catalog: Catalog, shrinkage: float = 10.0):
    """Global mean, then item and user deviations shrunk toward 0 (the 'bias baseline')."""
    users, items, ratings = catalog.pairs()
    mean = float(ratings.mean())
    item_sum = np.bincount(items, ratings - mean, minlength=catalog.num_items)
    item_count = np.bincount(items, minlength=catalog.num_items)
    item_biases = item_sum / (item_count + shrinkage)
    residual = ratings - mean - item_biases[items]
    user_sum = np.bincount(users, residual, minlength=catalog.num_users + 1)[:catalog.num_users]
    user_count = np.bincount(users, minlength=catalog.num_users + 1)[:catalog.num_users]
    return mean, (user_sum / (user_count + shrinkage)).astype(np.float32), item_biases.astype(
        np.float32)


def demographic_key(features):
    """One integer per user from age bucket, gender and occupation indices; works on int64
    numpy arrays (export time) and tensors (serving) alike."""
    key = features[DEMOGRAPHICS[0]]
    for name in DEMOGRAPHICS[1:]:
        key = key * 1000 + features[name]
    return key
