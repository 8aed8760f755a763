"""The hybrid two-tower model, as small Keras layers and tasks composed together.

A user is the sum of an id embedding (collaborative part), an encoding of their training
ratings and a projection of their demographics (content part); an item likewise of its id and
its genres and year (and, with title_words, its title's words). Each vector has a rating part
— rating = global mean + user bias + item bias + ⟨user, item⟩ — and a ranking part scored
over the whole catalog. The content parts carry users and items whose ids the model never saw
(cold start): ids outside the vocabulary get a zero id embedding, and `id_dropout` hides known
ids during training so the content parts learn to stand alone.
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

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
    title_tokens: int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    embedding_dim: int = 32  # width of the vectors the rating is computed from
    # Width of separate vectors the catalog ranking is computed from; 0: rank with the rating
    # vectors. Separate vectors let each objective shape its own geometry while the content
    # embeddings stay shared.
    rank_dim: int = 0
    id_dropout: float = 0.1
    # The share of the catalog's items whose ids each training step hides from the ranking
    # objective (DropoutNet): their score then comes from their content alone, vector and
    # ranking bias, as a movie nobody has rated yet is served.
    catalog_id_dropout: float = 0.1
    l2: float = 1e-5  # L2 of the rating parts and the shared content embeddings
    rank_l2: Optional[float] = None  # L2 of the ranking parts (None: l2)
    # Title words in the item tower: better ratings, worse ranking of movies nobody rated yet
    # (docs/choosing_settings.md), so off unless asked for.
    title_words: bool = False

    @property
    def tower_dim(self) -> int:
        return self.embedding_dim + self.rank_dim

    def tower_penalty(self) -> "PartL2":
        """The penalty of tables whose columns hold both parts: ranking wants less shrinkage
        than rating, so each part has its own weight."""
        return PartL2(self.l2, self.l2 if self.rank_l2 is None else self.rank_l2,
                      self.embedding_dim)


# The tables' L2 penalties are not Keras regularizers: HybridModel.gradients adds their
# gradients, written out below, to the objectives' own: the tape's gradient of a penalty
# reads each table once more and broadcasts its upstream gradient over it. The gain is a few
# per cent of a step (docs/design.md says when to drop this).
@dataclasses.dataclass(frozen=True)
class PartL2:
    """l2·‖W[:, :split]‖² + rank_l2·‖W[:, split:]‖², one weight per column; a table of one
    part has the same weight for both."""

    l2: float
    rank_l2: float
    split: int

    def __post_init__(self):
        # A config's `l2: 0` is an int: the column weights must be float32 all the same.
        object.__setattr__(self, "l2", float(self.l2))
        object.__setattr__(self, "rank_l2", float(self.rank_l2))

    def _column_weights(self, table) -> tf.Tensor:
        columns = tf.range(tf.shape(table)[1])
        return tf.where(columns < self.split, self.l2, self.rank_l2)

    def __call__(self, table) -> tf.Tensor:
        return tf.reduce_sum(tf.reduce_sum(tf.square(table), axis=0) * self._column_weights(table))

    def gradient(self, table) -> tf.Tensor:
        return table * (2 * self._column_weights(table))


PenalizedTables = List[Tuple[tf.Variable, PartL2]]


def _penalty(l2) -> Optional[PartL2]:
    """l2: one weight for the whole table (0: none), or a PartL2 of its own."""
    if isinstance(l2, PartL2):
        return l2
    return PartL2(l2, l2, 0) if l2 else None


def _penalized(*tables: tf.Variable, penalty: Optional[PartL2]) -> PenalizedTables:
    return [(table, penalty) for table in tables] if penalty else []


def penalized_tables(module: tf.Module) -> PenalizedTables:
    """Every table of module's layers that carries an L2 penalty, with it."""
    return [pair for layer in module.submodules if hasattr(layer, "penalized_tables")
            for pair in layer.penalized_tables()]


def penalty_loss(module: tf.Module) -> tf.Tensor:
    """Σ of module's penalties: the part of the objective that train_step differentiates by
    hand."""
    return tf.add_n([penalty(table) for table, penalty in penalized_tables(module)]
                    or [tf.constant(0.0)])


def small_normal() -> tf.keras.initializers.Initializer:
    """Every embedding table's start (a new initializer each: an unseeded one called twice
    gives the same values twice)."""
    return tf.keras.initializers.RandomNormal(stddev=0.01)


class PenalizedEmbedding(tf.keras.layers.Embedding):
    """An embedding table, small at the start, with its L2 penalty (l2: a weight or a
    PartL2)."""

    def __init__(self, buckets: int, dim: int, l2, **kwargs):
        super().__init__(buckets, dim, embeddings_initializer=small_normal(), **kwargs)
        self.penalty = _penalty(l2)

    def penalized_tables(self) -> PenalizedTables:
        return _penalized(self.embeddings, penalty=self.penalty)


class IdEmbedding(tf.keras.layers.Layer):
    """An id embedding plus bias that is zero for the OOV bucket (and dropped-out ids)."""

    def __init__(self, buckets: int, dim: int, l2, id_dropout: float, **kwargs):
        super().__init__(**kwargs)
        self._oov_index = buckets - F.OOV_BUCKETS
        self._id_dropout = id_dropout
        self.vectors = PenalizedEmbedding(buckets, dim, l2, name="vectors")
        self.biases = PenalizedEmbedding(buckets, 1, l2, name="biases")

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
        self.penalty = _penalty(l2)

    def build(self, input_shape):
        self.embeddings = self.add_weight(name="embeddings", shape=self._shape,
                                          initializer=small_normal())

    def penalized_tables(self) -> PenalizedTables:
        return _penalized(self.embeddings, penalty=self.penalty)

    def call(self, values: tf.SparseTensor) -> tf.Tensor:
        return tf.nn.safe_embedding_lookup_sparse(self.embeddings, values, combiner="mean")


class HistoryEncoder(tf.keras.layers.Layer):
    """The user's training ratings as a vector, after Koren's integrated model:
    |N(u)|^-½ Σ_{j ∈ N(u)} (y_j + (r_uj − μ) x_j) — which items they rated (SVD++'s implicit
    feedback) and how they rated them (a learned item-item neighbourhood). In training each
    example's own rating is taken out of its user's history, so the model cannot learn to find
    the answer in the history it is asked to predict from.

    The sum is computed once per distinct user of a batch, not once per example: a user with
    700 ratings appears in a training batch about 9 times, and the history was most of a step."""

    def __init__(self, seen_splits: np.ndarray, seen_items: np.ndarray,
                 seen_ratings: np.ndarray, mean_rating: float, items: int, dim: int,
                 l2, **kwargs):
        super().__init__(**kwargs)
        self._num_users = len(seen_splits) - 2
        self._mean_rating = float(mean_rating)
        self._splits = tf.Variable(seen_splits, trainable=False, dtype=tf.int64, name="splits")
        self._items = tf.Variable(seen_items, trainable=False, dtype=tf.int64, name="items")
        self._deviations = tf.Variable(np.asarray(seen_ratings, np.float32) - mean_rating,
                                       trainable=False, name="deviations")
        self._shape = (items, dim)
        self.penalty = _penalty(l2)

    def build(self, input_shape):
        self.implicit = self.add_weight(name="implicit", shape=self._shape,
                                        initializer=small_normal())
        self.explicit = self.add_weight(name="explicit", shape=self._shape,
                                        initializer=small_normal())

    def penalized_tables(self) -> PenalizedTables:
        return _penalized(self.implicit, self.explicit, penalty=self.penalty)

    def _item_terms(self, items: tf.Tensor, deviations: tf.Tensor) -> tf.Tensor:
        """y_j + (r_uj − μ)·x_j"""
        return (tf.gather(self.implicit, items)
                + deviations[:, None] * tf.gather(self.explicit, items))

    def fold_in(self, items: tf.Tensor, ratings: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """[1, dim]: the history of a user the model never saw, from the items (known indices)
        they rated and their ratings, without retraining; count: how many items they rated in
        all (items without a row count too)."""
        total = tf.reduce_sum(self._item_terms(items, ratings - self._mean_rating), axis=0)
        return (total * tf.math.rsqrt(tf.maximum(tf.cast(count, tf.float32), 1.0)))[None, :]

    def call(self, user_index: tf.Tensor, exclude=None) -> tf.Tensor:
        """exclude: (items, ratings) of each row's own rating, which must be in its user's
        history (training examples are), to take out of it."""
        users, row_user = tf.unique(tf.minimum(user_index, self._num_users))
        starts, ends = tf.gather(self._splits, users), tf.gather(self._splits, users + 1)
        positions = tf.ragged.range(starts, ends)
        # Σ_j y_j + (r_uj − μ)·x_j as two sparse [users, items] × [items, dim] products, whose
        # gradients are dense [items, dim] tables rather than a row per (user, rated item).
        cells = tf.stack([positions.value_rowids(),
                          tf.gather(self._items, positions.flat_values)], axis=1)
        shape = tf.stack([tf.size(users, out_type=tf.int64), self._shape[0]])
        rated = tf.SparseTensor(cells, tf.ones_like(positions.flat_values, tf.float32), shape)
        deviations = tf.SparseTensor(
            cells, tf.gather(self._deviations, positions.flat_values), shape)
        totals = (tf.sparse.sparse_dense_matmul(rated, self.implicit)
                  + tf.sparse.sparse_dense_matmul(deviations, self.explicit))
        total = tf.gather(totals, row_user)
        count = tf.cast(tf.gather(ends - starts, row_user), tf.float32)
        if exclude is not None:
            items, ratings = exclude
            in_history = tf.cast(count > 0, tf.float32)
            total -= in_history[:, None] * self._item_terms(items, ratings - self._mean_rating)
            count -= in_history
        return total * tf.math.rsqrt(tf.maximum(count, 1.0))[:, None]


class ContentEncoder(tf.keras.layers.Layer):
    """Projects the concatenated embeddings of categorical content features to a vector + bias
    (and, with rank_bias, a ranking bias of its own: an item's place in the catalog ranking
    from its content alone)."""

    def __init__(self, dim: int, rank_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.projection = tf.keras.layers.Dense(dim, name="projection")
        self.bias = tf.keras.layers.Dense(1, name="bias")
        self.rank_bias = tf.keras.layers.Dense(1, name="rank_bias") if rank_bias else None

    def call(self, embeddings) -> Tuple[tf.Tensor, tf.Tensor]:
        joined = tf.concat(embeddings, axis=1)
        return self.projection(joined), tf.squeeze(self.bias(joined), axis=1)

    def ranking_bias(self, embeddings) -> tf.Tensor:
        return tf.squeeze(self.rank_bias(tf.concat(embeddings, axis=1)), axis=1)


class UserTower(tf.keras.layers.Layer):
    """User id + rated-items history + age bucket, gender, occupation and zip prefix
    → (vector, bias)."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig,
                 history: Optional[HistoryEncoder] = None, **kwargs):
        super().__init__(**kwargs)
        dim, l2 = config.tower_dim, config.l2
        self.history = history
        self.ids = IdEmbedding(vocab.users, dim, config.tower_penalty(), config.id_dropout,
                               name="user_id")
        self.age = PenalizedEmbedding(vocab.age_buckets, 4, l2, name="age")
        self.gender = PenalizedEmbedding(vocab.genders, 2, l2, name="gender")
        self.occupation = PenalizedEmbedding(vocab.occupations, 8, l2, name="occupation")
        self.zip_prefix = PenalizedEmbedding(vocab.zip_prefixes, 8, l2, name="zip_prefix")
        self.content = ContentEncoder(dim, name="demographics")

    def call(self, features: Features, training=False, exclude=None,
             known=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """known: the ids.known() mask to use (default: drawn here); exclude: each row's own
        (item, rating), left out of the history (HistoryEncoder)."""
        # A dropped-out id hides the user's history too: in training they look exactly like
        # the users the model never saw, who have neither.
        if known is None:
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
            vector += self.history(features[F.USER_INDEX], exclude) * known[:, None]
        return vector, id_bias + content_bias


class ItemTower(tf.keras.layers.Layer):
    """Item id + genres (mean of genre embeddings), year bucket and, with title_words, the
    title's words (mean of their embeddings) → (vector, bias)."""

    def __init__(self, vocab: Vocabularies, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        dim, l2 = config.tower_dim, config.l2
        self.ids = IdEmbedding(vocab.items, dim, config.tower_penalty(), config.id_dropout,
                               name="item_id")
        self.genres = MeanEmbedding(vocab.genres, 8, l2, name="genres")
        self.title = (MeanEmbedding(vocab.title_tokens, 16, l2, name="title")
                      if config.title_words else None)
        self.year = PenalizedEmbedding(vocab.year_buckets, 4, l2, name="year")
        self.content = ContentEncoder(dim, rank_bias=True, name="content")

    def _embeddings(self, features: Features) -> List[tf.Tensor]:
        embeddings = [self.genres(features[F.GENRE_INDICES]), self.year(features[F.YEAR_BUCKET])]
        if self.title is not None:
            embeddings.append(self.title(features[F.TITLE_TOKENS]))
        return embeddings

    def call(self, features: Features, training=False, known=None
             ) -> Tuple[tf.Tensor, tf.Tensor]:
        """known: the ids.known() mask to use (default: drawn here)."""
        id_vector, id_bias = self.ids(features[F.ITEM_INDEX], training=training, known=known)
        content_vector, content_bias = self.content(self._embeddings(features))
        return id_vector + content_vector, id_bias + content_bias

    def content_rank_bias(self, features: Features) -> tf.Tensor:
        """[items]: the ranking bias of items without an id (served from content)."""
        return self.content.ranking_bias(self._embeddings(features))


class CatalogScores:
    """Scores s_uj = ⟨u, v_j⟩ + b_j of a batch of users over the whole catalog, b being the
    known users' item biases or, for users without a known id, the cold ones. Tasks ask for
    what they need: all scores (softmax), or the positives' and the sum of squares (weighted
    squares), which never forms the [users, items] matrix."""

    def __init__(self, users: tf.Tensor, items: tf.Tensor, biases: tf.Tensor,
                 cold_biases: tf.Tensor, known: tf.Tensor):
        """users [B, d], items [I, d], biases and cold_biases [I], known [B] (1.0: known id)."""
        self._users, self._items = users, items
        self._biases, self._cold_biases = biases, cold_biases
        self._known = known[:, None] > 0

    def biases(self) -> tf.Tensor:
        """[B, I]: each user's item biases."""
        return tf.where(self._known, self._biases, self._cold_biases)

    def all(self) -> tf.Tensor:
        return tf.matmul(self._users, self._items, transpose_b=True) + self.biases()

    def of(self, items: tf.Tensor) -> tf.Tensor:
        """[B]: each user's score of one item."""
        bias = tf.where(self._known[:, 0], tf.gather(self._biases, items),
                        tf.gather(self._cold_biases, items))
        return tf.reduce_sum(self._users * tf.gather(self._items, items), axis=1) + bias

    def sum_of_squares(self) -> tf.Tensor:
        """[B]: Σ_j s_uj² = uᵀ(VᵀV)u + 2·uᵀ(Vᵀb) + bᵀb, in O(I·d²) for the whole batch."""
        gramian = tf.matmul(self._items, self._items, transpose_a=True)
        known = self._known[:, 0]
        return (tf.reduce_sum(tf.matmul(self._users, gramian) * self._users, axis=1)
                + 2.0 * tf.where(known, self._cross(self._biases), self._cross(self._cold_biases))
                + tf.where(known, tf.reduce_sum(tf.square(self._biases)),
                           tf.reduce_sum(tf.square(self._cold_biases))))


    def _cross(self, biases: tf.Tensor) -> tf.Tensor:
        """[B]: uᵀ(Vᵀb)"""
        return tf.linalg.matvec(self._users,
                                tf.linalg.matvec(self._items, biases, transpose_a=True))


class SoftmaxRetrieval(tf.keras.layers.Layer):
    """Cross-entropy of each positive against the whole catalog (logits s·⟨u, v_j⟩ + b_j)."""

    def initial_biases(self, popularity: np.ndarray) -> np.ndarray:
        """log-popularity: the softmax's answer for a user it knows nothing about."""
        return np.log(np.maximum(popularity, 1e-6)).astype(np.float32)

    def call(self, scores: CatalogScores, positives: tf.Tensor, users: tf.Tensor) -> tf.Tensor:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives,
                                                              logits=scores.all())


class WeightedSquaresRetrieval(tf.keras.layers.Layer):
    """The implicit-feedback objective of weighted ALS, by gradient descent:
    (1 − s_ui)² for the positive, plus w0 · Σ_j s_uj² over the whole catalog, every item pulled
    toward 0 with weight w0. The catalog term is divided by the user's number of positives, so
    each user's unobserved items count once per epoch, as in ALS. The catalog sum comes from
    the items' Gramian, as in WALS, so a step's cost does not grow with users × items."""

    def __init__(self, positives_per_user: np.ndarray, unobserved_weight: float, **kwargs):
        super().__init__(**kwargs)
        self._counts = tf.constant(np.maximum(positives_per_user, 1), tf.float32)
        self._unobserved_weight = unobserved_weight

    def initial_biases(self, popularity: np.ndarray) -> np.ndarray:
        """Popularity scaled to the targets' range: a user it knows nothing about starts with
        the popularity ranking."""
        return (popularity / max(float(np.max(popularity)), 1e-12)).astype(np.float32)

    def call(self, scores: CatalogScores, positives: tf.Tensor, users: tf.Tensor) -> tf.Tensor:
        counts = tf.gather(self._counts, tf.minimum(users, tf.size(self._counts, tf.int64) - 1))
        return (tf.square(1.0 - scores.of(positives))
                + self._unobserved_weight / counts * scores.sum_of_squares())


class HybridModel(tf.keras.Model):
    """Rates (user, item) pairs and ranks the whole catalog for a user, from shared towers.

    Each tower's vector holds a rating part (the first `embedding_dim` values) and, when
    `rank_dim` > 0, a ranking part. Two objectives at once: the rating error (MSE) of
    global + biases + ⟨u, v⟩ over the rating parts, and a retrieval objective on implicit
    positives — every rated item — over the whole catalog's scores s·⟨u, v_j⟩ + rank_bias_j
    from the ranking parts (`retrieval`: a task above). The catalog is small enough (thousands
    of items) to score exactly, so no sampling bias needs correcting. Users whose id is unknown
    (or dropped out in training) are ranked from a fixed popularity prior, `cold_rank_bias`,
    plus what their demographics add: the content parts learn only the correction.
    """

    def __init__(self, vocab: Vocabularies, config: ModelConfig, mean_rating: float,
                 candidates: Features, rating_weight: float = 1.0,
                 retrieval_weight: float = 0.0, retrieval=None, history=None,
                 popularity=None, **kwargs):
        """retrieval: the retrieval task (default SoftmaxRetrieval). history: (seen_splits,
        seen_items, seen_ratings) of the training ratings, to encode each user's ratings (None:
        no history encoder). popularity: each item's share of the training ratings; both rank
        biases start where the task ranks by popularity, and the cold ones stay there."""
        super().__init__(**kwargs)
        history_encoder = None if history is None else HistoryEncoder(
            *history, mean_rating=mean_rating, items=vocab.items, dim=config.tower_dim,
            l2=config.tower_penalty(), name="history")
        self.user_tower = UserTower(vocab, config, history_encoder, name="user_tower")
        self.item_tower = ItemTower(vocab, config, name="item_tower")
        self.global_bias = tf.Variable(mean_rating, dtype=tf.float32, name="global_bias")
        self.retrieval = retrieval or SoftmaxRetrieval(name="retrieval")
        start = (np.zeros(vocab.items - F.OOV_BUCKETS, np.float32) if popularity is None
                 else self.retrieval.initial_biases(popularity))
        self.rank_bias = tf.Variable(start, name="rank_bias")
        self.cold_rank_bias = tf.Variable(start, name="cold_rank_bias", trainable=False)
        # A learned inverse temperature lets the softmax sharpen without inflating the vectors.
        self.rank_scale = tf.Variable(1.0, name="rank_scale")
        self._candidates = candidates
        self._num_items = vocab.items - F.OOV_BUCKETS
        self._rating_dim = config.embedding_dim
        self._catalog_id_dropout = config.catalog_id_dropout
        self._separate_rank = config.rank_dim > 0
        self._rating_weight = rating_weight
        self._retrieval_weight = retrieval_weight
        self.rating_loss = tf.keras.metrics.Mean(name="rating_mse")
        self.retrieval_loss = tf.keras.metrics.Mean(name="retrieval_loss")

    def rating_part(self, vectors: tf.Tensor) -> tf.Tensor:
        return vectors[:, :self._rating_dim]

    def rank_part(self, vectors: tf.Tensor) -> tf.Tensor:
        return vectors[:, self._rating_dim:] if self._separate_rank else vectors

    def rank_user_vectors(self, user_vectors: tf.Tensor) -> tf.Tensor:
        """Tower outputs → the user vectors the catalog is ranked by (⟨·, rank item⟩ + bias)."""
        return self.rank_scale * self.rank_part(user_vectors)

    def call(self, features: Features, training=False) -> tf.Tensor:
        user_vector, user_bias = self.user_tower(features, training=training)
        item_vector, item_bias = self.item_tower(features, training=training)
        return self.rating(user_vector, user_bias, item_vector, item_bias)

    def rating(self, user_vector, user_bias, item_vector, item_bias) -> tf.Tensor:
        return (self.global_bias + user_bias + item_bias + tf.reduce_sum(
            self.rating_part(user_vector) * self.rating_part(item_vector), axis=1))

    def catalog_scores(self, user_vectors: tf.Tensor, known: tf.Tensor, training=False
                       ) -> CatalogScores:
        """known: 1.0 where the user's id is known (the user tower's mask). In training a
        share of the candidates lose their ids (catalog_id_dropout): vector and ranking bias
        from content alone."""
        if not (training and self._catalog_id_dropout):
            item_vectors, _ = self.item_tower(self._candidates)
            return CatalogScores(self.rank_user_vectors(user_vectors),
                                 self.rank_part(item_vectors), self.rank_bias,
                                 self.cold_rank_bias, known)
        kept = tf.cast(tf.random.uniform([self._num_items]) >= self._catalog_id_dropout,
                       tf.float32)
        item_vectors, _ = self.item_tower(self._candidates, known=kept)
        content = (1.0 - kept) * self.item_tower.content_rank_bias(self._candidates)
        return CatalogScores(self.rank_user_vectors(user_vectors), self.rank_part(item_vectors),
                             kept * self.rank_bias + content, kept * self.cold_rank_bias + content,
                             known)

    def _objectives(self, features: Features, labels: tf.Tensor, training: bool):
        known_users = self.user_tower.ids.known(features[F.USER_INDEX], training)
        user_vector, user_bias = self.user_tower(
            features, training=training, known=known_users,
            exclude=(features[F.ITEM_INDEX], labels) if training else None)
        item_vector, item_bias = self.item_tower(features, training=training)
        rating = self.rating(user_vector, user_bias, item_vector, item_bias)
        rating_loss = tf.reduce_mean(tf.square(labels - rating))
        if not self._retrieval_weight:
            return rating_loss, tf.constant(0.0)
        positives = features[F.ITEM_INDEX]
        known = tf.cast(positives < self._num_items, tf.float32)
        losses = self.retrieval(self.catalog_scores(user_vector, known_users, training),
                                tf.minimum(positives, self._num_items - 1),
                                features[F.USER_INDEX])
        retrieval_loss = tf.reduce_sum(losses * known) / tf.maximum(tf.reduce_sum(known), 1.0)
        return rating_loss, retrieval_loss

    def gradients(self, features: Features, labels: tf.Tensor):
        """The gradient of the weighted objectives plus the tables' penalties with respect to
        trainable_variables (the penalties' part written out: L2), and the objectives."""
        # Replicas' gradients are summed: each replica's share of the global batch's loss.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            rating_loss, retrieval_loss = self._objectives(features, labels, training=True)
            loss = (self._rating_weight * rating_loss
                    + self._retrieval_weight * retrieval_loss) / replicas
        variables = self.trainable_variables
        penalties = {table.ref(): penalty for table, penalty in penalized_tables(self)}
        gradients = []
        for variable, gradient in zip(variables, tape.gradient(loss, variables)):
            penalty = penalties.get(variable.ref())
            if penalty is not None:
                own = penalty.gradient(variable) / replicas
                gradient = own if gradient is None else tf.convert_to_tensor(gradient) + own
            gradients.append(gradient)
        return gradients, rating_loss, retrieval_loss

    # The steps are plain tensor code: AutoGraph's conversion of them and of every Keras layer
    # they call (over 100 functions) took ~15 s of each Trainer run and bought nothing.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        gradients, rating_loss, retrieval_loss = self.gradients(*data)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._track(rating_loss, retrieval_loss)

    @tf.autograph.experimental.do_not_convert
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
