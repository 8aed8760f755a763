"""The hybrid two-tower rating model, as small Keras layers composed together.

A user is the sum of an id embedding (collaborative part) and a projection of their
demographics (content part); an item likewise of its id and its genres and year. The
predicted rating is global mean + user bias + item bias + ⟨user, item⟩. The content parts
carry users and items whose ids the model never saw (cold start): ids outside the vocabulary
get a zero id embedding, and `id_dropout` hides known ids during training so the content
parts learn to stand alone.
"""

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from components import features as F

Features = Dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """Number of buckets of each categorical input, OOV bucket included."""

    users: int
    items: int
    age_buckets: int
    genders: int
    occupations: int
    zip_prefixes: int
    year_buckets: int
    genres: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 32
    id_dropout: float = 0.1
    l2: float = 1e-5


def _embedding_weights(l2: float) -> dict:
    """Initializer and regularizer of every embedding table: small, L2-penalized."""
    return {"initializer": tf.keras.initializers.RandomNormal(stddev=0.01),
            "regularizer": tf.keras.regularizers.l2(l2) if l2 else None}


def _embedding(buckets: int, dim: int, l2: float, name: str) -> tf.keras.layers.Embedding:
    weights = _embedding_weights(l2)
    return tf.keras.layers.Embedding(buckets, dim, name=name,
                                     embeddings_initializer=weights["initializer"],
                                     embeddings_regularizer=weights["regularizer"])


class IdEmbedding(tf.keras.layers.Layer):
    """An id embedding plus bias that is zero for the OOV bucket (and dropped-out ids)."""

    def __init__(self, buckets: int, dim: int, l2: float, id_dropout: float, **kwargs):
        super().__init__(**kwargs)
        self._oov_index = buckets - F.OOV_BUCKETS
        self._id_dropout = id_dropout
        self.vectors = _embedding(buckets, dim, l2, "vectors")
        self.biases = _embedding(buckets, 1, l2, "biases")

    def known(self, index: tf.Tensor, training=False) -> tf.Tensor:
        """1.0 where the id is in the vocabulary and not dropped out, else 0.0."""
        known = index < self._oov_index
        if training and self._id_dropout:
            known &= tf.random.uniform(tf.shape(index)) >= self._id_dropout
        return tf.cast(known, tf.float32)

    def call(self, index: tf.Tensor, training=False, known=None) -> Tuple[tf.Tensor, tf.Tensor]:
        mask = self.known(index, training) if known is None else known
        return (self.vectors(index) * mask[:, None],
                tf.squeeze(self.biases(index), axis=1) * mask)


class MeanEmbedding(tf.keras.layers.Layer):
    """Mean of the embeddings of a sparse multivalent feature's values (an item's genres)."""

    def __init__(self, buckets: int, dim: int, l2: float, **kwargs):
        super().__init__(**kwargs)
        self._shape = (buckets, dim)
        self._l2 = l2

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=self._shape,
                                          **_embedding_weights(self._l2))

    def call(self, values: tf.SparseTensor) -> tf.Tensor:
        return tf.nn.safe_embedding_lookup_sparse(self.embeddings, values, combiner="mean")


class HistoryEncoder(tf.keras.layers.Layer):
    """SVD++-style implicit feedback: |N(u)|^-½ Σ_{j ∈ N(u)} y_j over the items u rated in
    training. In training each example's own item is taken out of its user's history, so the
    model cannot learn to find an item in the history it is asked to predict."""

    def __init__(self, seen_splits: np.ndarray, seen_items: np.ndarray, items: int, dim: int,
                 l2: float, **kwargs):
        super().__init__(**kwargs)
        self._num_users = len(seen_splits) - 2
        self._splits = tf.Variable(seen_splits, trainable=False, dtype=tf.int64, name="splits")
        self._items = tf.Variable(seen_items, trainable=False, dtype=tf.int64, name="items")
        self._shape = (items, dim)
        self._l2 = l2

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=self._shape,
                                          **_embedding_weights(self._l2))

    def call(self, user_index: tf.Tensor, exclude_items=None) -> tf.Tensor:
        rows = tf.gather(tf.RaggedTensor.from_row_splits(self._items, self._splits),
                         tf.minimum(user_index, self._num_users))
        total = tf.math.unsorted_segment_sum(
            tf.gather(self.embeddings, rows.flat_values), rows.value_rowids(),
            tf.shape(user_index, out_type=tf.int64)[0])
        count = tf.cast(rows.row_lengths(), tf.float32)
        if exclude_items is not None:
            total -= tf.gather(self.embeddings, tf.minimum(exclude_items, self._shape[0] - 1))
            count -= 1.0
        return total * tf.math.rsqrt(tf.maximum(count, 1.0))[:, None]


class ContentEncoder(tf.keras.layers.Layer):
    """Projects the concatenated embeddings of categorical content features to a vector + bias."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.projection = tf.keras.layers.Dense(dim, name="projection")
        self.bias = tf.keras.layers.Dense(1, name="bias")

    def call(self, embeddings) -> Tuple[tf.Tensor, tf.Tensor]:
        joined = tf.concat(embeddings, axis=1)
        return self.projection(joined), tf.squeeze(self.bias(joined), axis=1)


class UserTower(tf.keras.layers.Layer):
    """User id + rated-items history + age bucket, gender, occupation and zip prefix
    → (vector, bias)."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig,
                 history: Optional[HistoryEncoder] = None, **kwargs):
        super().__init__(**kwargs)
        dim, l2 = config.embedding_dim, config.l2
        self.history = history
        self.ids = IdEmbedding(vocab.users, dim, l2, config.id_dropout, name="user_id")
        self.age = _embedding(vocab.age_buckets, 4, l2, "age")
        self.gender = _embedding(vocab.genders, 2, l2, "gender")
        self.occupation = _embedding(vocab.occupations, 8, l2, "occupation")
        self.zip_prefix = _embedding(vocab.zip_prefixes, 8, l2, "zip_prefix")
        self.content = ContentEncoder(dim, name="demographics")

    def call(self, features: Features, training=False, exclude_items=None
             ) -> Tuple[tf.Tensor, tf.Tensor]:
        # A dropped-out id hides the user's history too: in training they look exactly like
        # the users the model never saw, who have neither.
        known = self.ids.known(features[F.USER_INDEX], training)
        id_vector, id_bias = self.ids(features[F.USER_INDEX], known=known)
        content_vector, content_bias = self.content([
            self.age(features[F.AGE_BUCKET]),
            self.gender(features[F.GENDER_INDEX]),
            self.occupation(features[F.OCCUPATION_INDEX]),
            self.zip_prefix(features[F.ZIP_PREFIX_INDEX]),
        ])
        vector = id_vector + content_vector
        if self.history is not None:
            vector += self.history(features[F.USER_INDEX], exclude_items) * known[:, None]
        return vector, id_bias + content_bias


class ItemTower(tf.keras.layers.Layer):
    """Item id + genres (mean of genre embeddings) and year bucket → (vector, bias)."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        dim, l2 = config.embedding_dim, config.l2
        self.ids = IdEmbedding(vocab.items, dim, l2, config.id_dropout, name="item_id")
        self.genres = MeanEmbedding(vocab.genres, 8, l2, name="genres")
        self.year = _embedding(vocab.year_buckets, 4, l2, "year")
        self.content = ContentEncoder(dim, name="content")

    def call(self, features: Features, training=False) -> Tuple[tf.Tensor, tf.Tensor]:
        id_vector, id_bias = self.ids(features[F.ITEM_INDEX], training=training)
        content_vector, content_bias = self.content([
            self.genres(features[F.GENRE_INDICES]), self.year(features[F.YEAR_BUCKET])])
        return id_vector + content_vector, id_bias + content_bias


class HybridModel(tf.keras.Model):
    """Rates (user, item) pairs and ranks the whole catalog for a user, from shared towers.

    Two objectives at once: the rating error (MSE) of global + biases + ⟨u, v⟩, and a
    retrieval objective on implicit positives — every rated item — as a softmax over the whole
    catalog with logits s·⟨u, v_j⟩ + rank_bias_j. The catalog is small enough (thousands of
    items) for the exact softmax, so no sampling bias needs correcting.
    """

    def __init__(self, vocab: Vocabularies, config: ModelConfig, mean_rating: float,
                 candidates: Features, rating_weight: float = 1.0,
                 retrieval_weight: float = 0.0, history=None, **kwargs):
        """history: (seen_splits, seen_items) of the training ratings, to encode each user's
        rated items (None: no history encoder)."""
        super().__init__(**kwargs)
        history_encoder = None if history is None else HistoryEncoder(
            *history, items=vocab.items, dim=config.embedding_dim, l2=config.l2, name="history")
        self.user_tower = UserTower(vocab, config, history_encoder, name="user_tower")
        self.item_tower = ItemTower(vocab, config, name="item_tower")
        self.global_bias = tf.Variable(mean_rating, dtype=tf.float32, name="global_bias")
        self.rank_bias = tf.Variable(tf.zeros([vocab.items - F.OOV_BUCKETS]), name="rank_bias")
        # A learned inverse temperature lets the softmax sharpen without inflating the
        # vectors the rating shares.
        self.rank_scale = tf.Variable(1.0, name="rank_scale")
        self._candidates = candidates
        self._num_items = vocab.items - F.OOV_BUCKETS
        self._rating_weight = rating_weight
        self._retrieval_weight = retrieval_weight
        self.rating_loss = tf.keras.metrics.Mean(name="rating_mse")
        self.retrieval_loss = tf.keras.metrics.Mean(name="retrieval_loss")

    def call(self, features: Features, training=False) -> tf.Tensor:
        user_vector, user_bias = self.user_tower(features, training=training)
        item_vector, item_bias = self.item_tower(features, training=training)
        return self.rating(features, user_vector, user_bias, item_vector, item_bias, training)

    def rating(self, features, user_vector, user_bias, item_vector, item_bias, training=False):
        return (self.global_bias + user_bias + item_bias
                + tf.reduce_sum(user_vector * item_vector, axis=1))

    def catalog_logits(self, user_vectors: tf.Tensor) -> tf.Tensor:
        item_vectors, _ = self.item_tower(self._candidates)
        return (self.rank_scale * tf.matmul(user_vectors, item_vectors, transpose_b=True)
                + self.rank_bias)

    def _objectives(self, features: Features, labels: tf.Tensor, training: bool):
        user_vector, user_bias = self.user_tower(
            features, training=training,
            exclude_items=features[F.ITEM_INDEX] if training else None)
        item_vector, item_bias = self.item_tower(features, training=training)
        rating = self.rating(features, user_vector, user_bias, item_vector, item_bias, training)
        rating_loss = tf.reduce_mean(tf.square(labels - rating))
        if not self._retrieval_weight:
            return rating_loss, tf.constant(0.0)
        positives = features[F.ITEM_INDEX]
        known = tf.cast(positives < self._num_items, tf.float32)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.minimum(positives, self._num_items - 1),
            logits=self.catalog_logits(user_vector))
        retrieval_loss = tf.reduce_sum(cross_entropy * known) / tf.maximum(
            tf.reduce_sum(known), 1.0)
        return rating_loss, retrieval_loss

    def train_step(self, data):
        features, labels = data
        with tf.GradientTape() as tape:
            rating_loss, retrieval_loss = self._objectives(features, labels, training=True)
            loss = (self._rating_weight * rating_loss + self._retrieval_weight * retrieval_loss
                    + tf.add_n(self.losses or [tf.constant(0.0)]))
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return self._track(rating_loss, retrieval_loss)

    def test_step(self, data):
        features, labels = data
        return self._track(*self._objectives(features, labels, training=False))

    def _track(self, rating_loss, retrieval_loss):
        self.rating_loss.update_state(rating_loss)
        self.retrieval_loss.update_state(retrieval_loss)
        return {"rating_mse": self.rating_loss.result(),
                "retrieval_loss": self.retrieval_loss.result()}

    @property
    def metrics(self):
        return [self.rating_loss, self.retrieval_loss]
