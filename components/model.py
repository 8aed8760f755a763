"""The hybrid two-tower rating model, as small Keras layers composed together.

A user is the sum of an id embedding (collaborative part) and a projection of their
demographics (content part); an item likewise of its id and its genres and year. The
predicted rating is global mean + user bias + item bias + ⟨user, item⟩. The content parts
carry users and items whose ids the model never saw (cold start): ids outside the vocabulary
get a zero id embedding, and `id_dropout` hides known ids during training so the content
parts learn to stand alone.
"""

import dataclasses
from typing import Dict, Tuple

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


def _embedding(buckets: int, dim: int, l2: float, name: str) -> tf.keras.layers.Embedding:
    return tf.keras.layers.Embedding(
        buckets, dim, name=name,
        embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
        embeddings_regularizer=tf.keras.regularizers.l2(l2) if l2 else None)


class IdEmbedding(tf.keras.layers.Layer):
    """An id embedding plus bias that is zero for the OOV bucket (and dropped-out ids)."""

    def __init__(self, buckets: int, dim: int, l2: float, id_dropout: float, **kwargs):
        super().__init__(**kwargs)
        self._oov_index = buckets - F.OOV_BUCKETS
        self._id_dropout = id_dropout
        self.vectors = _embedding(buckets, dim, l2, "vectors")
        self.biases = _embedding(buckets, 1, l2, "biases")

    def call(self, index: tf.Tensor, training=False) -> Tuple[tf.Tensor, tf.Tensor]:
        known = index < self._oov_index
        if training and self._id_dropout:
            known &= tf.random.uniform(tf.shape(index)) >= self._id_dropout
        mask = tf.cast(known, tf.float32)
        return (self.vectors(index) * mask[:, None],
                tf.squeeze(self.biases(index), axis=1) * mask)


class MeanEmbedding(tf.keras.layers.Layer):
    """Mean of the embeddings of a sparse multivalent feature's values (an item's genres)."""

    def __init__(self, buckets: int, dim: int, l2: float, **kwargs):
        super().__init__(**kwargs)
        self._shape = (buckets, dim)
        self._l2 = l2

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=self._shape,
            initializer=tf.keras.initializers.RandomNormal(stddev=0.01),
            regularizer=tf.keras.regularizers.l2(self._l2) if self._l2 else None)

    def call(self, values: tf.SparseTensor) -> tf.Tensor:
        return tf.nn.safe_embedding_lookup_sparse(self.embeddings, values, combiner="mean")


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
    """User id + age bucket, gender, occupation and zip prefix → (vector, bias)."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        dim, l2 = config.embedding_dim, config.l2
        self.ids = IdEmbedding(vocab.users, dim, l2, config.id_dropout, name="user_id")
        self.age = _embedding(vocab.age_buckets, 4, l2, "age")
        self.gender = _embedding(vocab.genders, 2, l2, "gender")
        self.occupation = _embedding(vocab.occupations, 8, l2, "occupation")
        self.zip_prefix = _embedding(vocab.zip_prefixes, 8, l2, "zip_prefix")
        self.content = ContentEncoder(dim, name="demographics")

    def call(self, features: Features, training=False) -> Tuple[tf.Tensor, tf.Tensor]:
        id_vector, id_bias = self.ids(features[F.USER_INDEX], training=training)
        content_vector, content_bias = self.content([
            self.age(features[F.AGE_BUCKET]),
            self.gender(features[F.GENDER_INDEX]),
            self.occupation(features[F.OCCUPATION_INDEX]),
            self.zip_prefix(features[F.ZIP_PREFIX_INDEX]),
        ])
        return id_vector + content_vector, id_bias + content_bias


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


class HybridRatingModel(tf.keras.Model):
    """Predicts a rating from transformed user and item features."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig, mean_rating: float, **kwargs):
        super().__init__(**kwargs)
        self.user_tower = UserTower(vocab, config, name="user_tower")
        self.item_tower = ItemTower(vocab, config, name="item_tower")
        self.global_bias = tf.Variable(mean_rating, dtype=tf.float32, name="global_bias")

    def call(self, features: Features, training=False) -> tf.Tensor:
        user_vector, user_bias = self.user_tower(features, training=training)
        item_vector, item_bias = self.item_tower(features, training=training)
        return (self.global_bias + user_bias + item_bias
                + tf.reduce_sum(user_vector * item_vector, axis=1))
