"""The serving contract of a pushed model: `serving_default`, `recommend`,
`recommend_with_features` and `similar_items`.

Every raw input goes through the same Transform graph as in training, so serving cannot skew
from training. Known users' and all items' tower outputs are computed once at export time;
a request then costs one matrix product and a top-k.
"""

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import features as F
from components.catalog import Catalog
from components.model import HybridRatingModel

RATING_RANGE = (1.0, 5.0)
SIGNATURES = ("serving_default", "recommend", "recommend_with_features", "similar_items")

_ids = tf.TensorSpec([None], tf.string)
_k = tf.TensorSpec([], tf.int32, name="k")


def _constant(values, dtype) -> tf.Variable:
    return tf.Variable(np.asarray(values), dtype=dtype, trainable=False)


class RecommenderModule(tf.Module):
    """Holds the model, the Transform layer and the precomputed catalog; exposes the signatures."""

    def __init__(self, model: HybridRatingModel, transform_output: tft.TFTransformOutput,
                 catalog: Catalog):
        super().__init__()
        self.model = model
        self.tft_layer = transform_output.transform_features_layer()
        raw_spec = transform_output.raw_feature_spec()
        self._example_spec = {name: raw_spec[name] for name in F.MODEL_INPUTS}
        self._num_users = catalog.num_users
        self._num_items = catalog.num_items
        user_vectors, user_biases = model.user_tower(catalog.user_inputs())
        item_vectors, item_biases = model.item_tower(catalog.item_inputs())
        self.user_vectors = _constant(user_vectors, tf.float32)
        self.user_biases = _constant(user_biases, tf.float32)
        self.item_vectors = _constant(item_vectors, tf.float32)
        self.item_biases = _constant(item_biases, tf.float32)
        self.item_ids = _constant(
            transform_output.vocabulary_by_name(F.ITEM_VOCAB)[:catalog.num_items], tf.string)
        self.popularity = _constant(catalog.popularity, tf.float32)
        self.seen_splits = _constant(catalog.seen_splits, tf.int64)
        self.seen_items = _constant(catalog.seen_items, tf.int64)

    def _index(self, key: str, ids: tf.Tensor, index_key: str) -> tf.Tensor:
        return self.tft_layer({key: tf.expand_dims(ids, 1)})[index_key]

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor):
        top = tf.math.top_k(scores, tf.minimum(k, self._num_items))
        return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

    def _without_seen(self, scores: tf.Tensor, user_index: tf.Tensor) -> tf.Tensor:
        """Sets the scores of items each user rated in training to -inf."""
        seen = tf.gather(tf.RaggedTensor.from_row_splits(self.seen_items, self.seen_splits),
                         tf.minimum(user_index, self._num_users))
        positions = tf.stack([seen.value_rowids(), seen.flat_values], axis=1)
        return tf.tensor_scatter_nd_update(
            scores, positions, tf.fill([tf.shape(positions)[0]], -np.inf))

    def _model_scores(self, user_vectors: tf.Tensor, user_biases: tf.Tensor) -> tf.Tensor:
        return (self.model.global_bias + user_biases[:, None] + self.item_biases[None, :]
                + tf.matmul(user_vectors, self.item_vectors, transpose_b=True))

    def _popularity_where_unknown(self, scores, index, num_known) -> tf.Tensor:
        known = index < num_known
        return tf.where(known[:, None], scores,
                        tf.broadcast_to(self.popularity[None, :], tf.shape(scores)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        """Serialized tf.Examples with raw features → predicted rating in [1, 5]."""
        transformed = self.tft_layer(tf.io.parse_example(examples, self._example_spec))
        return {"rating": tf.clip_by_value(self.model(transformed), *RATING_RANGE)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id"), _k])
    def recommend(self, user_id, k):
        """Top-k unseen items for known users; the most popular items for unknown ones."""
        index = self._index(F.USER_ID, user_id, F.USER_INDEX)
        safe = tf.minimum(index, self._num_users - 1)
        scores = self._model_scores(tf.gather(self.user_vectors, safe),
                                    tf.gather(self.user_biases, safe))
        scores = self._popularity_where_unknown(scores, index, self._num_users)
        return self._top_k(self._without_seen(scores, index), k)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="user_id"),
        tf.TensorSpec([None], tf.int64, name="age"),
        tf.TensorSpec([None], tf.string, name="gender"),
        tf.TensorSpec([None], tf.string, name="occupation"),
        tf.TensorSpec([None], tf.string, name="zip_code"),
        _k])
    def recommend_with_features(self, user_id, age, gender, occupation, zip_code, k):
        """Top-k unseen items scored from the given demographics (and the id, when known)."""
        raw = {F.USER_ID: user_id, F.AGE: age, F.GENDER: gender, F.OCCUPATION: occupation,
               F.ZIP_CODE: zip_code}
        transformed = self.tft_layer({name: tf.expand_dims(v, 1) for name, v in raw.items()})
        vectors, biases = self.model.user_tower(transformed)
        scores = self._model_scores(vectors, biases)
        return self._top_k(self._without_seen(scores, transformed[F.USER_INDEX]), k)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="item_id"), _k])
    def similar_items(self, item_id, k):
        """Items nearest by cosine of item vectors; popular items for unknown ids."""
        index = self._index(F.ITEM_ID, item_id, F.ITEM_INDEX)
        safe = tf.minimum(index, self._num_items - 1)
        unit = tf.math.l2_normalize(self.item_vectors, axis=1)
        scores = tf.matmul(tf.gather(unit, safe), unit, transpose_b=True)
        scores = self._popularity_where_unknown(scores, index, self._num_items)
        itself = tf.stack([tf.range(tf.shape(index, out_type=tf.int64)[0]), safe], axis=1)
        scores = tf.tensor_scatter_nd_update(
            scores, itself[index < self._num_items],
            tf.fill([tf.reduce_sum(tf.cast(index < self._num_items, tf.int32))], -np.inf))
        return self._top_k(scores, k)


def export(module: RecommenderModule, directory: str) -> None:
    tf.saved_model.save(module, directory, signatures={
        "serving_default": module.serve_examples,
        "recommend": module.recommend,
        "recommend_with_features": module.recommend_with_features,
        "similar_items": module.similar_items,
    })
