"""The serving contract of a pushed model: `serving_default`, `recommend`,
`recommend_with_features` and `similar_items`, the same for every model kind.

Every raw input goes through the same Transform graph as in training, so serving cannot skew
from training. Known users' and all items' vectors are tables computed at export time; a
request then costs, per block of users, one matrix product (plus, for the hybrid, the
item-item rows of the users' rated items) and a top-k. Users the model never saw are served
from their demographics: through the hybrid's user tower, or, for table models, as the mean
vector of known users with the same age bucket, gender and occupation.
"""

from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform.saved import saved_transform_io_v2

from components import features as F
from components.models.hybrid import HybridModel
from components.models.tables import TableModel, demographic_key
from components.serving.exclusions import Exclusions
from components.training.catalog import Catalog

RATING_RANGE = (1.0, 5.0)
SIGNATURES = ("serving_default", "recommend", "recommend_with_features", "similar_items")
# A batch is scored and ranked this many users at a time, two blocks side by side (TF's sparse
# × dense product and RaggedBincount each run on one thread): a block's [users × items] tensors
# stay in cache and the allocator reuses them, where the whole batch's — 40 MB each at 943 users
# × 10,677 items — were mapped and zeroed afresh, op after op.
SCORE_BLOCK_USERS = 16

_k = tf.TensorSpec([], tf.int32, name="k")


def whole_rows_sum(seen: tf.RaggedTensor, matrix: tf.Tensor) -> tf.Tensor:
    """[users, items]: Σ over each user's rated items j of matrix[j, ·], as one sparse × dense
    product (|rated| rows per user are read)."""
    return tf.sparse.sparse_dense_matmul(tf.sparse.SparseTensor(
        tf.stack([seen.value_rowids(), seen.flat_values], axis=1),
        tf.ones_like(seen.flat_values, tf.float32),
        [seen.nrows(), tf.shape(matrix, out_type=tf.int64)[0]]), matrix)


def neighbour_rows_sum(seen: tf.RaggedTensor, neighbours: tf.Tensor, weights: tf.Tensor,
                       num_items: int) -> tf.Tensor:
    """[users, items]: Σ over each user's rated items j of weights[j] at neighbours[j]: a
    weighted count over |rated|·k cells, faster than whole rows where k ≪ num_items (943
    users at 10,677 items, with a top 10: whole rows 262 ms, k 256 67 ms, `make
    bench-item-item`). Counted by RaggedBincount itself (seen's row splits int64, as it
    takes them): tf.math.bincount first takes the maximum of every cell (a pass as long as
    the count), and its flat form needs each cell's row offset computed first."""
    rated = seen.flat_values
    return tf.raw_ops.RaggedBincount(
        splits=seen.row_splits * neighbours.shape[1],
        values=tf.reshape(tf.gather(neighbours, rated), [-1]), size=num_items,
        weights=tf.reshape(tf.gather(weights, rated), [-1]), binary_output=False)


def top_k_by_blocks(score_block: Callable[..., tf.Tensor], rows: Sequence, k: tf.Tensor
                    ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Indices and values of each user's k best scores: score_block(*rows of a block) gives a
    block's [users, items] scores, SCORE_BLOCK_USERS users at a time (`rows`: tensors, dense
    or ragged, one row per user)."""
    users = tf.shape(rows[0])[0] if isinstance(rows[0], tf.Tensor) else rows[0].nrows(tf.int32)
    # At least one block: an empty batch is one block of no users, [0, k].
    blocks = tf.maximum((users + SCORE_BLOCK_USERS - 1) // SCORE_BLOCK_USERS, 1)
    indices = tf.TensorArray(tf.int32, size=blocks, infer_shape=False, element_shape=[None, None])
    values = tf.TensorArray(tf.float32, size=blocks, infer_shape=False, element_shape=[None, None])

    def block(number, indices, values):
        start = number * SCORE_BLOCK_USERS
        top = tf.math.top_k(score_block(*[row[start:start + SCORE_BLOCK_USERS] for row in rows]), k)
        return number + 1, indices.write(number, top.indices), values.write(number, top.values)

    _, indices, values = tf.while_loop(lambda number, *_: number < blocks, block,
                                       [0, indices, values], parallel_iterations=2)
    return indices.concat(), values.concat()


def _constant(values, dtype) -> tf.Variable:
    return tf.Variable(np.asarray(values), dtype=dtype, trainable=False)


def _with_zero_row(values: np.ndarray) -> np.ndarray:
    """Appends the OOV row: unknown ids contribute nothing."""
    return np.concatenate([values, np.zeros((1,) + values.shape[1:], values.dtype)])


class TransformGraph(tf.Module):
    """Transform's graph applied to raw features: what tft's TransformFeaturesLayer does,
    without the Keras model around it, whose Keras serialization traced the whole graph
    again with AutoGraph at every export (~4 s)."""

    def __init__(self, transform_output: tft.TFTransformOutput):
        super().__init__()
        loader = saved_transform_io_v2.SavedModelLoader(transform_output.transform_savedmodel_dir)
        object.__setattr__(self, "_loader", loader)
        # As TransformFeaturesLayer does: tracks the loaded graph's tables, assets, variables.
        self.loader_state = loader.__dict__

    def __call__(self, raw: dict) -> dict:
        return self._loader.apply_transform_model(raw)


class RecommenderModule(tf.Module):
    """Holds the tables, the Transform layer and (for the hybrid) the model; exposes the
    signatures. They are plain tensor code, traced without AutoGraph (whose conversion of
    every layer they reach cost seconds of each export)."""

    def __init__(self, tables: TableModel, transform_output: tft.TFTransformOutput,
                 catalog: Catalog, hybrid: Optional[HybridModel] = None,
                 hybrid_variables: Sequence[tf.Variable] = (),
                 exclusions: Optional[Exclusions] = None):
        super().__init__()
        if hybrid is not None and not hybrid_variables:
            raise ValueError("a hybrid is exported with its variables (the next warm start's)")
        # The hybrid's variables are saved (the towers' and the autoencoder's, which the next
        # warm start reads), not the Keras model: Keras' own SavedModel serialization traces
        # every layer's call (seconds of each export) for a Keras loader nobody uses here.
        # object.__setattr__ keeps the model out of the object graph.
        object.__setattr__(self, "_hybrid", hybrid)
        self.hybrid_variables = list(hybrid_variables)
        self.transform = TransformGraph(transform_output)
        raw_spec = transform_output.raw_feature_spec()
        self._example_spec = {name: raw_spec[name] for name in F.MODEL_INPUTS}
        self._num_users = catalog.num_users
        self._num_items = catalog.num_items
        self.global_bias = _constant(tables.global_bias, tf.float32)
        self.user_vectors = _constant(_with_zero_row(tables.user_vectors), tf.float32)
        self.user_biases = _constant(_with_zero_row(tables.user_biases), tf.float32)
        self.item_vectors = _constant(_with_zero_row(tables.item_vectors), tf.float32)
        self.item_biases = _constant(_with_zero_row(tables.item_biases), tf.float32)
        self.item_rank_biases = _constant(tables.item_rank_biases, tf.float32)
        self.cold_item_rank_biases = _constant(tables.cold_item_rank_biases, tf.float32)
        self.rank_user_vectors = _constant(_with_zero_row(tables.rank_user_vectors), tf.float32)
        self.rank_item_vectors = _constant(tables.rank_item_vectors, tf.float32)
        self.item_ids = _constant(
            transform_output.vocabulary_by_name(F.ITEM_VOCAB)[:catalog.num_items], tf.string)
        self.popularity = _constant(catalog.popularity, tf.float32)
        self.seen_splits = _constant(catalog.seen_splits, tf.int64)
        self.seen_items = _constant(catalog.seen_items, tf.int64)
        # Rated in spans older than the training window: excluded, never scored from.
        exclusions = exclusions or Exclusions.none(catalog.num_users)
        self.excluded_splits = _constant(exclusions.splits, tf.int64)
        self.excluded_items = _constant(exclusions.items, tf.int64)
        self._table_rating_share = tables.table_rating_share
        self.item_item = self.item_neighbours = None
        if tables.item_item is not None:
            self.item_item = _constant(tables.item_item.weights, tf.float32)
            if tables.item_item.indices is not None:
                self.item_neighbours = _constant(tables.item_item.indices, tf.int32)
        self._init_demographic_means(tables, catalog)

    def _init_demographic_means(self, tables: TableModel, catalog: Catalog) -> None:
        """Mean known-user vectors per demographic group; the last rows are overall means."""
        keys = demographic_key(catalog.user_features)
        groups, group_of_user = np.unique(keys, return_inverse=True)

        def means(vectors: np.ndarray) -> tf.Variable:
            sums = np.zeros((len(groups), vectors.shape[1]), np.float32)
            np.add.at(sums, group_of_user, vectors)
            rows = sums / np.bincount(group_of_user)[:, None]
            return _constant(np.concatenate([rows, vectors.mean(axis=0, keepdims=True)]),
                             tf.float32)

        self.group_vectors = means(tables.user_vectors)
        self.group_rank_vectors = means(tables.rank_user_vectors)
        self.group_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(groups, tf.int64), tf.range(len(groups), dtype=tf.int64)),
            default_value=len(groups))

    def _transform(self, raw) -> dict:
        return self.transform({name: tf.expand_dims(value, 1) for name, value in raw.items()})

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor):
        top = tf.math.top_k(scores, tf.minimum(k, self._num_items))
        return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

    def _seen(self, user_index: tf.Tensor) -> tf.RaggedTensor:
        """Each user's items rated in training (none for unknown users)."""
        return self._rows(self.seen_items, self.seen_splits, user_index)

    def _rows(self, values: tf.Variable, splits: tf.Variable, user_index: tf.Tensor
              ) -> tf.RaggedTensor:
        return tf.gather(tf.RaggedTensor.from_row_splits(values, splits),
                         tf.minimum(user_index, self._num_users))

    def _unseen_top_k(self, score_block: Callable[..., tf.Tensor], index: tf.Tensor,
                      user_vectors: tf.Tensor, seen: tf.RaggedTensor, k: tf.Tensor):
        """The top k of each user's scores (score_block(index, user_vectors, seen) of a block
        of users), less every item they rated: in training and in older spans."""
        excluded = self._rows(self.excluded_items, self.excluded_splits, index)

        def unseen_scores(index, user_vectors, seen, excluded):
            rated = tf.concat([seen, excluded], axis=1)
            positions = tf.stack([rated.value_rowids(), rated.flat_values], axis=1)
            return tf.tensor_scatter_nd_update(
                score_block(index, user_vectors, seen), positions,
                tf.fill([tf.shape(positions)[0]], -np.inf))

        indices, scores = top_k_by_blocks(unseen_scores, (index, user_vectors, seen, excluded),
                                          tf.minimum(k, self._num_items))
        return {"item_ids": tf.gather(self.item_ids, indices), "scores": scores}

    def _rank_scores(self, index: tf.Tensor, user_vectors: tf.Tensor, seen: tf.RaggedTensor
                     ) -> tf.Tensor:
        known = (index < self._num_users)[:, None]
        scores = (tf.matmul(user_vectors, self.rank_item_vectors, transpose_b=True)
                  + tf.where(known, self.item_rank_biases, self.cold_item_rank_biases))
        if self.item_item is None:
            return scores
        return scores + self._item_item_scores(seen)

    def _rank_scores_or_popularity(self, index: tf.Tensor, user_vectors: tf.Tensor,
                                   seen: tf.RaggedTensor) -> tf.Tensor:
        return self._popularity_where_unknown(self._rank_scores(index, user_vectors, seen),
                                              index, self._num_users)

    def _item_item_scores(self, seen: tf.RaggedTensor) -> tf.Tensor:
        if self.item_neighbours is None:
            return whole_rows_sum(seen, self.item_item)
        return neighbour_rows_sum(seen, self.item_neighbours, self.item_item, self._num_items)

    def _popularity_where_unknown(self, scores, index, num_known) -> tf.Tensor:
        return tf.where((index < num_known)[:, None], scores, self.popularity[None, :])

    def _table_ratings(self, transformed) -> tf.Tensor:
        users = tf.minimum(transformed[F.USER_INDEX], self._num_users)
        items = tf.minimum(transformed[F.ITEM_INDEX], self._num_items)
        user_vectors = tf.gather(self.user_vectors, users)
        known = users < self._num_users
        # Users the model never saw: their demographic group's mean vector.
        user_vectors = tf.where(known[:, None], user_vectors,
                                self._group_vectors(self.group_vectors, transformed))
        return (self.global_bias + tf.gather(self.user_biases, users)
                + tf.gather(self.item_biases, items)
                + tf.reduce_sum(user_vectors * tf.gather(self.item_vectors, items), axis=1))

    def _group_vectors(self, table: tf.Variable, transformed) -> tf.Tensor:
        return tf.gather(table, self.group_table.lookup(demographic_key(transformed)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def serve_examples(self, examples):
        """Serialized tf.Examples with raw features → predicted rating in [1, 5]."""
        transformed = self.transform(tf.io.parse_example(examples, self._example_spec))
        if self._hybrid is None:
            rating = self._table_ratings(transformed)
        else:
            rating = self._hybrid(transformed)
            if self._table_rating_share > 0:
                known = ((transformed[F.USER_INDEX] < self._num_users)
                         & (transformed[F.ITEM_INDEX] < self._num_items))
                rating = tf.where(known, rating + self._table_rating_share * (
                    self._table_ratings(transformed) - rating), rating)
        return {"rating": tf.clip_by_value(rating, *RATING_RANGE)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), _k],
                 autograph=False)
    def recommend(self, user_id, k):
        """Top-k unseen items for known users; the most popular items for unknown ones."""
        index = self._transform({F.USER_ID: user_id})[F.USER_INDEX]
        return self._unseen_top_k(self._rank_scores_or_popularity, index,
                                  tf.gather(self.rank_user_vectors, index), self._seen(index), k)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="user_id"),
        tf.TensorSpec([None], tf.int64, name="age"),
        tf.TensorSpec([None], tf.string, name="gender"),
        tf.TensorSpec([None], tf.string, name="occupation"),
        tf.TensorSpec([None], tf.string, name="zip_code"),
        _k], autograph=False)
    def recommend_with_features(self, user_id, age, gender, occupation, zip_code, k):
        """Top-k unseen items scored from the given demographics (and the id, when known)."""
        transformed = self._transform({
            F.USER_ID: user_id, F.AGE: age, F.GENDER: gender, F.OCCUPATION: occupation,
            F.ZIP_CODE: zip_code})
        index = transformed[F.USER_INDEX]
        if self._hybrid is not None:
            vectors = self._hybrid.rank_user_vectors(self._hybrid.user_tower(transformed)[0])
        else:
            vectors = tf.where((index < self._num_users)[:, None],
                               tf.gather(self.rank_user_vectors, index),
                               self._group_vectors(self.group_rank_vectors, transformed))
        return self._unseen_top_k(self._rank_scores, index, vectors, self._seen(index), k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id"), _k],
                 autograph=False)
    def similar_items(self, item_id, k):
        """Items nearest by cosine of item vectors; popular items for unknown ids."""
        index = self._transform({F.ITEM_ID: item_id})[F.ITEM_INDEX]
        safe = tf.minimum(index, self._num_items - 1)
        unit = tf.math.l2_normalize(self.rank_item_vectors, axis=1)
        scores = tf.matmul(tf.gather(unit, safe), unit, transpose_b=True)
        scores = self._popularity_where_unknown(scores, index, self._num_items)
        known = index < self._num_items
        itself = tf.stack([tf.range(tf.shape(index, out_type=tf.int64)[0]), safe], axis=1)
        scores = tf.tensor_scatter_nd_update(
            scores, itself[known], tf.fill([tf.reduce_sum(tf.cast(known, tf.int32))], -np.inf))
        return self._top_k(scores, k)


def export(module: RecommenderModule, directory: str) -> None:
    tf.saved_model.save(module, directory, signatures={
        "serving_default": module.serve_examples,
        "recommend": module.recommend,
        "recommend_with_features": module.recommend_with_features,
        "similar_items": module.similar_items,
    })
