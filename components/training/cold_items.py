"""The catalog's items that no training rating names (a movie just added to items.csv): their
transformed content features, and a content prior for their ranking bias.

They are served from their content alone: for the hybrid, the item tower with the id masked
and its content ranking bias, as the ranking objective's candidates without ids train them
(catalog_id_dropout); for the table models, in place of the per-item ranking bias that only
ratings can learn, the bias that items of the same genres and year have (ridge regression on
the known items' biases).
Once ratings arrive, the next run gives the item an id of its own.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components import features as F
from components.example_gen.item_catalog import ItemTable

PRIOR_L2 = 1.0  # ridge penalty of the bias prior, per feature (its inputs are 0/1)
CALIBRATION_USERS = 2048  # known users whose scores calibrate content-only ones


@dataclasses.dataclass
class ColdItems:
    item_ids: List[str]  # in catalog order, after the known items
    features: Dict[str, tf.Tensor]  # transformed item features, item_index the OOV bucket

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def empty(cls) -> "ColdItems":
        return cls([], {})


def cold_items(table: ItemTable, known_ids: Sequence[str], transform) -> ColdItems:
    """The table's items not in known_ids, their raw features through transform (the
    Transform graph, raw → transformed)."""
    known = set(known_ids)
    rows = [row for row, item_id in enumerate(table.item_ids) if item_id not in known]
    if not rows:
        return ColdItems.empty()
    transformed = transform(table.raw_features(rows))
    return ColdItems([table.item_ids[row] for row in rows],
                     {name: transformed[name]
                      for name in (F.ITEM_INDEX, F.YEAR_BUCKET, F.GENRE_INDICES)})


def content_matrix(year_buckets: np.ndarray, genres: Sequence[np.ndarray], num_year_buckets: int,
                   num_genres: int) -> np.ndarray:
    """[items, 1 + years + genres]: an intercept, the one-hot year bucket, the k-hot genres."""
    matrix = np.zeros((len(year_buckets), 1 + num_year_buckets + num_genres), np.float64)
    matrix[:, 0] = 1.0
    matrix[np.arange(len(year_buckets)), 1 + np.asarray(year_buckets, np.int64)] = 1.0
    for row, item_genres in enumerate(genres):
        matrix[row, 1 + num_year_buckets + np.asarray(item_genres, np.int64)] = 1.0
    return matrix


def content_prior(known: np.ndarray, values: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """values (one per known item, e.g. its ranking bias) predicted for the cold items from
    their content rows, by ridge regression on the known items' rows."""
    gramian = known.T @ known + PRIOR_L2 * np.eye(known.shape[1])
    weights = np.linalg.solve(gramian, known.T @ np.asarray(values, np.float64))
    return (cold @ weights).astype(np.float32)


def genre_lists(features: Dict[str, tf.Tensor]) -> List[np.ndarray]:
    """Each cold item's genre indices."""
    return [np.asarray(row, np.int64) for row in
            tf.RaggedTensor.from_sparse(features[F.GENRE_INDICES]).to_list()]


def with_cold_items(tables, known_content: np.ndarray, cold_content: np.ndarray,
                    cold_rank_vectors: np.ndarray, cold_rank_biases: Optional[np.ndarray] = None):
    """tables with the cold items' ranking rows appended after the known items': their rank
    vectors as given (the content part of the model) and their rank biases as given (the
    hybrid's content rank bias) or else content priors of the known items' (ridge). The
    rating tables keep the known items only: a rating of a cold item is the towers'."""
    if not len(cold_content):
        return tables

    def biases(known: np.ndarray) -> np.ndarray:
        cold = (content_prior(known_content, known, cold_content) if cold_rank_biases is None
                else cold_rank_biases)
        return np.concatenate([known, np.asarray(cold, np.float32)])

    return dataclasses.replace(
        tables,
        rank_item_vectors=np.concatenate([tables.rank_item_vectors,
                                          cold_rank_vectors.astype(np.float32)]),
        content_rank_vectors=np.concatenate([tables.content_rank_vectors,
                                             cold_rank_vectors.astype(np.float32)]),
        item_rank_biases=biases(tables.item_rank_biases),
        cold_item_rank_biases=biases(tables.cold_item_rank_biases))


def calibration(content_scores: np.ndarray, served_scores: np.ndarray) -> Tuple[float, float]:
    """(a, b) of the least-squares fit served ≈ a·content + b over every cell: the score a
    known item with a given content-only score is served with. Applied to a cold item's
    content-only scores, it mixes new movies into the rankings at the rate known movies of
    that content score reach them (a content score predicts the served one only in part, so
    a < 1 pulls them toward the mean)."""
    content = np.asarray(content_scores, np.float64).ravel()
    served = np.asarray(served_scores, np.float64).ravel()
    centered = content - content.mean()
    scale = float(centered @ (served - served.mean()) / max(centered @ centered, 1e-12))
    return scale, float(served.mean() - scale * content.mean())
