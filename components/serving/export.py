"""The serving contract of a pushed model, the same for every model kind: `serving_default`
(ratings), `recommend`, `recommend_with_features`, `recommend_constrained` (the user's
constraints: genres, years, items), `recommend_from_answers` (a new user's few answers),
`similar_items` and `users_for_item`.

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
from components.serving.served_items import ServedItems
from components.training.catalog import Catalog

RATING_RANGE = (1.0, 5.0)
SIGNATURES = ("serving_default", "recommend", "recommend_with_features", "recommend_constrained",
              "recommend_from_answers", "similar_items", "users_for_item")
# Ridge of the table models' fold-in of a new user's answers (the hybrid folds in through its
# history encoder).
FOLD_IN_L2 = 1.0
# A new user's n answers weigh n / (n + ANSWERS_PRIOR) against the popularity prior the model
# ranks users it never saw by: a few answers say little (docs/choosing_settings.md).
ANSWERS_PRIOR = 40.0
# A batch is scored and ranked this many users at a time, two blocks side by side (TF's sparse
# × dense product and RaggedBincount each run on one thread): a block's [users × items] tensors
# stay in cache and the allocator reuses them, where the whole batch's — 40 MB each at 943 users
# × 10,677 items — were mapped and zeroed afresh, op after op.
SCORE_BLOCK_USERS = 16

_k = tf.TensorSpec([], tf.int32, name="k")
_CONSTRAINTS = [
    tf.TensorSpec([None], tf.string, name="include_genres"),  # any of them (none: any genre)
    tf.TensorSpec([None], tf.string, name="exclude_genres"),
    tf.TensorSpec([], tf.int64, name="min_year"),  # 0: no lower bound
    tf.TensorSpec([], tf.int64, name="max_year"),  # 0: no upper bound
    tf.TensorSpec([None], tf.string, name="exclude_item_ids"),
]


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
    every layer they reach cost seconds of each export).

    Items are indexed as served: Transform's vocabulary (the rated items), then the catalog's
    items without ratings, whose ranking rows the tables hold after the known items'."""

    def __init__(self, tables: TableModel, transform_output: tft.TFTransformOutput,
                 catalog: Catalog, items: ServedItems, hybrid: Optional[HybridModel] = None,
                 hybrid_variables: Sequence[tf.Variable] = (),
                 exclusions: Optional[Exclusions] = None):
        super().__init__()
        if hybrid is not None and not hybrid_variables:
            raise ValueError("a hybrid is exported with its variables (the next warm start's)")
        if len(tables.rank_item_vectors) != len(items):
            raise ValueError(f"{len(tables.rank_item_vectors)} ranked items but {len(items)} "
                             "served")
        # The hybrid's variables are saved (the towers' and the autoencoder's, which the next
        # warm start reads), not the Keras model: Keras' own SavedModel serialization traces
        # every layer's call (seconds of each export) for a Keras loader nobody uses here.
        # object.__setattr__ keeps the model out of the object graph.
        object.__setattr__(self, "_hybrid", hybrid)
        self.hybrid_variables = list(hybrid_variables)
        self.transform = TransformGraph(transform_output)
        raw_spec = transform_output.raw_feature_spec()
        self._example_spec = {name: raw_spec[name] for name in F.MODEL_INPUTS}
        # Like year and genres, a title may be left out (an item with no title words).
        self._example_spec[F.TITLE] = tf.io.FixedLenFeature(
            raw_spec[F.TITLE].shape, tf.string, default_value=[""] * raw_spec[F.TITLE].shape[0])
        self._num_users = catalog.num_users
        self._num_known_items = catalog.num_items
        self._num_items = len(items)
        self.global_bias = _constant(tables.global_bias, tf.float32)
        self.user_vectors = _constant(_with_zero_row(tables.user_vectors), tf.float32)
        self.user_biases = _constant(_with_zero_row(tables.user_biases), tf.float32)
        self.item_vectors = _constant(_with_zero_row(tables.item_vectors), tf.float32)
        self.item_biases = _constant(_with_zero_row(tables.item_biases), tf.float32)
        self.item_rank_biases = _constant(tables.item_rank_biases, tf.float32)
        self.cold_item_rank_biases = _constant(tables.cold_item_rank_biases, tf.float32)
        self.rank_user_vectors = _constant(_with_zero_row(tables.rank_user_vectors), tf.float32)
        self.rank_item_vectors = _constant(tables.rank_item_vectors, tf.float32)
        self.content_rank_vectors = _constant(tables.content_rank_vectors, tf.float32)
        self.item_ids = _constant(items.item_ids, tf.string)
        self.user_ids = _constant(
            transform_output.vocabulary_by_name(F.USER_VOCAB)[:catalog.num_users], tf.string)
        self.item_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(items.item_ids), tf.range(len(items), dtype=tf.int64)),
            default_value=-1)
        self.popularity = _constant(np.concatenate([
            catalog.popularity, np.zeros(len(items) - catalog.num_items)]), tf.float32)
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
        self._init_constraints(items)
        self._init_demographic_means(tables, catalog)
        self._init_fold_in(tables, catalog)

    def _init_constraints(self, items: ServedItems) -> None:
        names = items.genre_names()
        self.genre_names = _constant(names or [""], tf.string)
        self.genre_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(names or [""]), tf.range(max(len(names), 1), dtype=tf.int64)),
            default_value=-1)
        matrix = items.genre_matrix(names) if names else np.zeros((len(items), 1), np.float32)
        self.item_genres = _constant(matrix, tf.float32)
        self.item_years = _constant(items.years, tf.int64)

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

    def _init_fold_in(self, tables: TableModel, catalog: Catalog) -> None:
        """A new user's starting vector: the hybrid's user tower on the known users'
        demographics alone (id and history masked), averaged; the table models' mean user."""
        if self._hybrid is None:
            self.answers_base_vector = _constant(tables.rank_user_vectors.mean(axis=0), tf.float32)
            return
        users = catalog.user_inputs()
        content, _ = self._hybrid.user_tower(users, known=tf.zeros([catalog.num_users]))
        self.answers_base_vector = _constant(
            tf.reduce_mean(content, axis=0).numpy(), tf.float32)

    def _transform(self, raw) -> dict:
        return self.transform({name: tf.expand_dims(value, 1) for name, value in raw.items()})

    def _seen(self, user_index: tf.Tensor) -> tf.RaggedTensor:
        """Each user's items rated in training (none for unknown users)."""
        return self._rows(self.seen_items, self.seen_splits, user_index)

    def _rows(self, values: tf.Variable, splits: tf.Variable, user_index: tf.Tensor
              ) -> tf.RaggedTensor:
        return tf.gather(tf.RaggedTensor.from_row_splits(values, splits),
                         tf.minimum(user_index, self._num_users))

    def _checked_k(self, k: tf.Tensor) -> tf.Tensor:
        check = tf.debugging.assert_positive(k, message="k must be a positive integer")
        with tf.control_dependencies([check]):
            return tf.minimum(k, self._num_items)

    def _served_index(self, item_ids: tf.Tensor, what: str) -> tf.Tensor:
        """Each id's served index; an id outside the catalog is refused, named."""
        index = self.item_index.lookup(item_ids)
        unknown = index < 0
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(unknown)),
            [f"{what}: not in the catalog (items.csv):", tf.boolean_mask(item_ids, unknown)],
            summarize=10)
        with tf.control_dependencies([check]):
            return tf.identity(index)

    def _unseen_top_k(self, score_block: Callable[..., tf.Tensor], index: tf.Tensor,
                      user_vectors: tf.Tensor, seen: tf.RaggedTensor, k: tf.Tensor,
                      allowed: Optional[tf.Tensor] = None):
        """The top k of each user's scores (score_block(index, user_vectors, seen) of a block
        of users), less every item they rated, in training and in older spans, and every item
        outside allowed ([items] bool, the constraints). Where fewer than k remain, the rows
        end with empty ids at -inf, past the longest row's last item."""
        excluded = self._rows(self.excluded_items, self.excluded_splits, index)

        def unseen_scores(index, user_vectors, seen, excluded):
            scores = score_block(index, user_vectors, seen)
            if allowed is not None:
                scores = tf.where(allowed[None, :], scores, -np.inf)
            rated = tf.concat([seen, excluded], axis=1)
            positions = tf.stack([rated.value_rowids(), rated.flat_values], axis=1)
            return tf.tensor_scatter_nd_update(
                scores, positions, tf.fill([tf.shape(positions)[0]], -np.inf))

        indices, scores = top_k_by_blocks(unseen_scores, (index, user_vectors, seen, excluded),
                                          self._checked_k(k))
        return self._ranked(indices, scores, self.item_ids, "item_ids")

    @staticmethod
    def _ranked(indices: tf.Tensor, scores: tf.Tensor, ids: tf.Variable, name: str):
        """Top-k indices and scores as ids; -inf (excluded) entries as empty ids, cut off past
        the last row's last real entry."""
        found = scores > -np.inf
        # An empty batch's maximum is the lowest int32: no width.
        width = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(found, tf.int32), axis=1)), 0)
        named = tf.where(found, tf.gather(ids, indices), "")
        return {name: named[:, :width], "scores": scores[:, :width]}

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
        """[users, served items]: the rated items' item-item rows (none for cold items)."""
        if self.item_neighbours is None:
            rows = whole_rows_sum(seen, self.item_item)
            return tf.pad(rows, [[0, 0], [0, self._num_items - self._num_known_items]])
        return neighbour_rows_sum(seen, self.item_neighbours, self.item_item, self._num_items)

    def _item_item_columns(self, items: tf.Tensor) -> tf.Tensor:
        """[known items, len(items)]: the item-item weights into each of items (served
        indices; zero for cold ones)."""
        known = tf.cast(items < self._num_known_items, tf.float32)
        safe = tf.minimum(items, self._num_known_items - 1)
        if self.item_neighbours is None:
            return tf.gather(self.item_item, safe, axis=1) * known[None, :]
        hits = tf.equal(self.item_neighbours[:, :, None], tf.cast(safe, tf.int32)[None, None, :])
        return tf.reduce_sum(tf.where(hits, self.item_item[:, :, None], 0.0), axis=1) * known

    def _popularity_where_unknown(self, scores, index, num_known) -> tf.Tensor:
        return tf.where((index < num_known)[:, None], scores, self.popularity[None, :])

    def _table_ratings(self, transformed) -> tf.Tensor:
        users = tf.minimum(transformed[F.USER_INDEX], self._num_users)
        items = tf.minimum(transformed[F.ITEM_INDEX], self._num_known_items)
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

    def _genre_mask(self, genres: tf.Tensor, default: bool) -> tf.Tensor:
        """[items] bool: the item has one of genres (default where genres is empty); an
        unknown genre is refused, named."""
        index = self.genre_index.lookup(genres)
        unknown = index < 0
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(unknown)),
            ["genre not in the catalog:", tf.boolean_mask(genres, unknown), "known:",
             self.genre_names], summarize=100)
        with tf.control_dependencies([check]):
            chosen = tf.scatter_nd(tf.maximum(index, 0)[:, None], tf.ones_like(index, tf.float32),
                                   tf.shape(self.genre_names, out_type=tf.int64))
        hit = tf.linalg.matvec(self.item_genres, chosen) > 0
        return tf.logical_or(hit, tf.logical_and(default, tf.equal(tf.size(genres), 0)))

    def _allowed(self, include_genres, exclude_genres, min_year, max_year, exclude_item_ids
                 ) -> tf.Tensor:
        """[items] bool: the items that meet the constraints (an unknown year meets no year
        bound)."""
        years = self.item_years
        allowed = (self._genre_mask(include_genres, default=True)
                   & ~self._genre_mask(exclude_genres, default=False)
                   & ((min_year <= 0) | (years >= min_year))
                   & ((max_year <= 0) | ((years <= max_year) & (years > 0))))
        excluded = self._served_index(exclude_item_ids, "exclude_item_ids")
        return tf.tensor_scatter_nd_update(allowed, excluded[:, None],
                                           tf.zeros_like(excluded, tf.bool))

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
                         & (transformed[F.ITEM_INDEX] < self._num_known_items))
                rating = tf.where(known, rating + self._table_rating_share * (
                    self._table_ratings(transformed) - rating), rating)
        return {"rating": tf.clip_by_value(rating, *RATING_RANGE)}

    def _recommend(self, user_id, k, allowed=None):
        index = self._transform({F.USER_ID: user_id})[F.USER_INDEX]
        return self._unseen_top_k(self._rank_scores_or_popularity, index,
                                  tf.gather(self.rank_user_vectors, index), self._seen(index), k,
                                  allowed)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), _k],
                 autograph=False)
    def recommend(self, user_id, k):
        """Top-k unseen items for known users; the most popular items for unknown ones."""
        return self._recommend(user_id, k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), _k,
                                  *_CONSTRAINTS], autograph=False)
    def recommend_constrained(self, user_id, k, include_genres, exclude_genres, min_year,
                              max_year, exclude_item_ids):
        """recommend, within the user's constraints, applied inside the ranking: k items
        whenever k unseen items meet them, none when no item does."""
        return self._recommend(user_id, k, self._allowed(
            include_genres, exclude_genres, min_year, max_year, exclude_item_ids))

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

    def _answers_vector(self, items: tf.Tensor, ratings: tf.Tensor) -> tf.Tensor:
        """[1, rank dim]: a new user's ranking vector from the items they rated (served
        indices) and how: the hybrid's history encoder folded in (cold items, which it has no
        rows for, count as rated but add nothing); for a table model, ridge regression of
        their rank vectors on the ratings' deviations."""
        if self._hybrid is None:
            vectors = tf.gather(self.rank_item_vectors, items)
            gramian = (tf.matmul(vectors, vectors, transpose_a=True)
                       + FOLD_IN_L2 * tf.eye(tf.shape(vectors)[1]))
            target = tf.linalg.matvec(vectors, ratings - self.global_bias, transpose_a=True)
            return (self.answers_base_vector
                    + tf.linalg.solve(gramian, target[:, None])[:, 0])[None, :]
        vector = self.answers_base_vector[None, :]
        history = self._hybrid.user_tower.history
        if history is not None:
            known = items < self._num_known_items
            vector += history.fold_in(tf.boolean_mask(items, known),
                                      tf.boolean_mask(ratings, known), tf.size(items))
        return self._hybrid.rank_user_vectors(vector)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="item_ids"),
        tf.TensorSpec([None], tf.float32, name="ratings"),
        tf.TensorSpec([None], tf.string, name="genres"),
        _k, *_CONSTRAINTS], autograph=False)
    def recommend_from_answers(self, item_ids, ratings, genres, k, include_genres,
                               exclude_genres, min_year, max_year, exclude_item_ids):
        """Top-k for a new user from a sign-up page's answers, without retraining: the movies
        they rated (item_ids, with ratings of the same length) fold into a user vector and
        the item-item rows, over the popularity prior of users the model never saw (the more
        answers, the less prior: ANSWERS_PRIOR); genres they like restrict the ranking to
        those genres (as include_genres does); the constraints as in recommend_constrained.
        One user."""
        check = tf.debugging.assert_equal(
            tf.size(item_ids), tf.size(ratings),
            message="item_ids and ratings must have the same length")
        with tf.control_dependencies([check]):
            items = self._served_index(item_ids, "item_ids")
        allowed = (self._allowed(include_genres, exclude_genres, min_year, max_year,
                                 exclude_item_ids)
                   & self._genre_mask(genres, default=True))
        rated = tf.RaggedTensor.from_row_lengths(items, [tf.size(items, out_type=tf.int64)])
        known = tf.boolean_mask(items, items < self._num_known_items)
        from_items = tf.RaggedTensor.from_row_lengths(known, [tf.size(known, out_type=tf.int64)])
        personal = tf.matmul(self._answers_vector(items, ratings), self.rank_item_vectors,
                             transpose_b=True)
        if self.item_item is not None:
            personal += self._item_item_scores(from_items)
        answered = tf.cast(tf.size(items), tf.float32)
        scores = (self.cold_item_rank_biases
                  + answered / (answered + ANSWERS_PRIOR) * personal)
        scores = tf.where(allowed[None, :], scores, -np.inf)
        positions = tf.stack([rated.value_rowids(), rated.flat_values], axis=1)
        scores = tf.tensor_scatter_nd_update(scores, positions,
                                             tf.fill([tf.shape(positions)[0]], -np.inf))
        top = tf.math.top_k(scores, self._checked_k(k))
        return self._ranked(top.indices, top.values, self.item_ids, "item_ids")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id"), _k],
                 autograph=False)
    def similar_items(self, item_id, k):
        """Items nearest by cosine of item ranking vectors; for a movie nobody rated yet, of
        every item's vector from content alone. An id outside the catalog is refused."""
        index = self._served_index(item_id, "item_id")

        def cosines(vectors):
            unit = tf.math.l2_normalize(vectors, axis=1)
            return tf.matmul(tf.gather(unit, index), unit, transpose_b=True)

        scores = tf.where((index >= self._num_known_items)[:, None],
                          cosines(self.content_rank_vectors), cosines(self.rank_item_vectors))
        itself = tf.stack([tf.range(tf.shape(index, out_type=tf.int64)[0]), index], axis=1)
        scores = tf.tensor_scatter_nd_update(scores, itself,
                                             tf.fill([tf.shape(index)[0]], -np.inf))
        top = tf.math.top_k(scores, self._checked_k(k))
        return self._ranked(top.indices, top.values, self.item_ids, "item_ids")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id"), _k],
                 autograph=False)
    def users_for_item(self, item_id, k):
        """The k known users who would rank each item highest (the article's "users for a
        product"), scored as recommend scores them; users who rated it are left out."""
        index = self._served_index(item_id, "item_id")
        users = tf.range(self._num_users, dtype=tf.int64)
        scores = (tf.matmul(tf.gather(self.rank_item_vectors, index),
                            self.rank_user_vectors[:self._num_users], transpose_b=True)
                  + tf.gather(self.item_rank_biases, index)[:, None])
        if self.item_item is not None:
            scores += tf.transpose(whole_rows_sum(self._seen(users),
                                                  self._item_item_columns(index)))
        for splits, values in ((self.seen_splits, self.seen_items),
                               (self.excluded_splits, self.excluded_items)):
            rated = self._rows(values, splits, users)
            hits = tf.where(tf.equal(rated.flat_values[None, :], index[:, None]))
            cells = tf.stack([hits[:, 0], tf.gather(rated.value_rowids(), hits[:, 1])], axis=1)
            scores = tf.tensor_scatter_nd_update(scores, cells,
                                                 tf.fill([tf.shape(cells)[0]], -np.inf))
        top = tf.math.top_k(scores, tf.minimum(self._checked_k(k), self._num_users))
        return self._ranked(top.indices, top.values, self.user_ids, "user_ids")


def export(module: RecommenderModule, directory: str) -> None:
    tf.saved_model.save(module, directory, signatures={
        "serving_default": module.serve_examples,
        "recommend": module.recommend,
        "recommend_with_features": module.recommend_with_features,
        "recommend_constrained": module.recommend_constrained,
        "recommend_from_answers": module.recommend_from_answers,
        "similar_items": module.similar_items,
        "users_for_item": module.users_for_item,
    })
