"""The catalog's items that no training rating names (a movie just added to items.csv): their
transformed content features, and a content prior for their ranking bias.

In place of the per-item ranking bias that only ratings can learn, a cold item gets the bias
that items of the same genres and year have (ridge regression on the known items' biases);
the hybrid adds the item tower's content vector (id masked, as catalog_id_dropout trains it),
both parts weighed by how well they predict known items' served scores (calibration).
Once ratings arrive, the next run gives the item an id of its own."""

import dataclasses
from typing import Dict, List, Sequence, Tuple

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
                      for name in (F.ITEM_INDEX, F.YEAR_BUCKET, F.GENRE_INDICES,
                                  F.TITLE_TOKENS)})


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
                    cold_rank_vectors: np.ndarray,
                    known_users_map: Tuple[float, float] = (1.0, 0.0),
                    strangers_map: Tuple[float, float] = (1.0, 0.0)):
    """tables with the cold items' ranking rows appended after the known items': their rank
    vectors as given (the content part of the model) and, for each rank bias table, the
    content prior of the known items' biases (ridge), mapped as scale·prior + shift to the
    scale of the users that table serves: known users (item_rank_biases) and users the model
    never saw (cold_item_rank_biases). The rating tables keep the known items only: a rating
    of a cold item is the towers'."""
    if not len(cold_content):
        return tables

    def biases(known: np.ndarray, scale_and_shift: Tuple[float, float]) -> np.ndarray:
        scale, shift = scale_and_shift
        prior = content_prior(known_content, known, cold_content)
        return np.concatenate([known, scale * prior + shift]).astype(np.float32)

    return dataclasses.replace(
        tables,
        rank_item_vectors=np.concatenate([tables.rank_item_vectors,
                                          cold_rank_vectors.astype(np.float32)]),
        content_rank_vectors=np.concatenate([tables.content_rank_vectors,
                                             cold_rank_vectors.astype(np.float32)]),
        item_rank_biases=biases(tables.item_rank_biases, known_users_map),
        cold_item_rank_biases=biases(tables.cold_item_rank_biases, strangers_map))


def calibration(parts: Sequence[np.ndarray], served: np.ndarray,
                rows_per_block: int = 256) -> Tuple[np.ndarray, float]:
    """(weights, shift) of the least-squares fit served ≈ Σ weights[i]·parts[i] + shift over
    every cell ([users, items], each part broadcast to it): the score a known item is served
    with, predicted from what a cold item has too (its content-only scores). Applied to a
    cold item's parts, it mixes new movies into the rankings at the rate known movies with
    those parts reach them, and weighs each part by how much of the served score it predicts."""
    served = np.asarray(served)
    count = len(parts) + 1
    gram, moments = np.zeros((count, count)), np.zeros(count)
    for start in range(0, served.shape[0], rows_per_block):
        block = slice(start, start + rows_per_block)
        target = served[block].astype(np.float64)
        columns = [np.broadcast_to(np.asarray(part, np.float64)[block]
                                   if np.ndim(part) == 2 else np.asarray(part, np.float64),
                                   target.shape).ravel() for part in parts]
        columns.append(np.ones(target.size))
        matrix = np.stack(columns, axis=1)
        gram += matrix.T @ matrix
        moments += matrix.T @ target.ravel()
    solution = np.linalg.lstsq(gram, moments, rcond=None)[0]
    return solution[:-1], float(solution[-1])
