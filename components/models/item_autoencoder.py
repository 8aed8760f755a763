"""An item-based autoencoder of ratings (I-AutoRec, Sedhain et al. 2015): each item seen
through the ratings its users gave it.

Item i's ratings by every user, r_i (0 where unrated), are encoded as h_i = σ(W·r_i + b) and
decoded as r̂_i = Vᵀ·h_i + c; only observed ratings count in the loss. A step on a batch B
of items minimizes

    Σ_{i∈B, obs} (r_ui − ⟨h_i, V_u⟩ − c_u)² + |B|/64 · λ/2 (‖W‖² + ‖V‖²),

λ counted per 64 items, the batch it was tuned with, so that an epoch regularizes the same
whatever the batch size (larger catalogs take larger batches: see AutoencoderConfig).

The towers see each *user* through their history; this sees each *item* through its raters,
which is why the two blend well. Its prediction is bilinear in (item code, user column), so
it is served as rating tables: item vectors h_i, user vectors V_u, user biases c_u. Inputs and
outputs stay sparse (observed entries only), so memory follows the number of ratings, not
users × items.
"""

import dataclasses
from typing import List, Optional

import numpy as np
import tensorflow as tf

from components.models.tables import TableModel
from components.training.adam import create_slots, fused_adam
from components.training.catalog import Catalog
from components.training.warm_start import WarmStartReport, warm_start

# A warm start of the autoencoder: its encoder and decoder rows carried over by user id.
WARM_ROWS = ("item_autoencoder/encoder", "item_autoencoder/decoder")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    hidden: int = 500
    l2: float = 10.0  # λ of the summed loss above
    epochs: int = 50
    # After a warm start (training/warm_start.py: rows follow the user ids), these instead.
    warm_start_epochs: int = 10
    batch_items: int = 64
    # Larger catalogs take larger batches, so that an epoch is at most this many steps: every
    # step updates the whole [users, hidden] encoder and decoder and their Adam moments, a cost
    # that grows with the users whatever the batch (0.24 s a step at 70K users; ML-100K's 1,682
    # items in batches of 64 are 27 steps).
    max_steps_per_epoch: int = 27
    learning_rate: float = 1e-3
    seed: int = 42


class ItemAutoencoder(tf.Module):
    """σ(W·r + b) then Vᵀ·h + c, scored only at the (item, user) pairs asked for."""

    def __init__(self, num_users: int, hidden: int, seed: int):
        super().__init__(name="item_autoencoder")
        init = tf.random.stateless_normal
        with self.name_scope:  # item_autoencoder/encoder, ...: the names a warm start matches
            self.encoder = tf.Variable(init([num_users, hidden], [seed, 0], stddev=0.03),
                                       name="encoder")
            self.encoder_bias = tf.Variable(tf.zeros([hidden]), name="encoder_bias")
            # [users, hidden]: a step gathers its users' rows, no transpose of the whole table.
            self.decoder = tf.Variable(tf.transpose(init([hidden, num_users], [seed, 1],
                                                         stddev=0.03)), name="decoder")
            self.decoder_bias = tf.Variable(tf.zeros([num_users]), name="decoder_bias")
        self.weights = [self.encoder, self.encoder_bias, self.decoder, self.decoder_bias]

    def codes(self, ratings: tf.SparseTensor) -> tf.Tensor:
        """[items, hidden] codes of a batch of items' sparse [items, users] rating rows."""
        return tf.sigmoid(tf.sparse.sparse_dense_matmul(ratings, self.encoder)
                          + self.encoder_bias)

    def predict(self, codes: tf.Tensor, rows: tf.Tensor, users: tf.Tensor) -> tf.Tensor:
        """Reconstructed rating of user users[n] for the item whose code is codes[rows[n]]."""
        return (tf.reduce_sum(tf.gather(codes, rows) * tf.gather(self.decoder, users), axis=1)
                + tf.gather(self.decoder_bias, users))

    def squared_errors(self, batch: tf.SparseTensor) -> tf.Tensor:
        predicted = self.predict(self.codes(batch), batch.indices[:, 0], batch.indices[:, 1])
        return tf.reduce_sum(tf.square(batch.values - predicted))

    @staticmethod
    def _l2(batch: tf.SparseTensor, l2_per_item: float) -> tf.Tensor:
        """|B| · l2_per_item: the regularizer counted once per item, so that an epoch adds
        the same whatever the batches."""
        return tf.cast(batch.dense_shape[0], tf.float32) * l2_per_item

    def loss(self, batch: tf.SparseTensor, l2_per_item: float) -> tf.Tensor:
        """A batch of items' squared errors plus |B| · l2_per_item/2 (‖W‖² + ‖V‖²)."""
        return (self.squared_errors(batch)
                + self._l2(batch, l2_per_item) / 2 * (tf.reduce_sum(tf.square(self.encoder))
                                                      + tf.reduce_sum(tf.square(self.decoder))))

    def gradients(self, batch: tf.SparseTensor, l2_per_item: float) -> List[tf.Tensor]:
        """loss()'s gradient with respect to self.weights, derived by hand so that no tensor
        has a row per rating: the tape's gather of a code and a decoder row for each of a
        batch's ratings makes several [ratings, hidden] tensors a step (0.7 GB each at
        MovieLens-10M's shape, 396 items of ~940 raters), which the system allocator maps and
        unmaps every step. Here the largest are the [items, users] products and the
        [users, hidden] gradients themselves. With e the 2·(prediction − rating) per
        observed pair, E and R the batch's sparse [items, users] errors and ratings:
        ∂/∂V = Eᵀ·h + s·V, ∂/∂c = Σ e per user, ∂/∂W = Rᵀ·(E·V ∘ h(1 − h)) + s·W,
        ∂/∂b = Σ over items of E·V ∘ h(1 − h), where s = |B| · l2_per_item."""
        codes = self.codes(batch)
        products = tf.matmul(codes, self.decoder, transpose_b=True)  # [items, users]
        users = batch.indices[:, 1]
        predicted = tf.gather_nd(products, batch.indices) + tf.gather(self.decoder_bias, users)
        errors = tf.sparse.SparseTensor(batch.indices, 2 * (predicted - batch.values),
                                        batch.dense_shape)
        pre_activation = (tf.sparse.sparse_dense_matmul(errors, self.decoder)
                          * codes * (1 - codes))
        scale = self._l2(batch, l2_per_item)
        return [
            tf.sparse.sparse_dense_matmul(batch, pre_activation, adjoint_a=True)
            + scale * self.encoder,
            tf.reduce_sum(pre_activation, axis=0),
            tf.sparse.sparse_dense_matmul(errors, codes, adjoint_a=True) + scale * self.decoder,
            tf.math.unsorted_segment_sum(errors.values, users, tf.shape(self.decoder_bias)[0]),
        ]


def epoch_batches(num_items: int, config: AutoencoderConfig, rng: np.random.Generator):
    """One epoch's item batches: a permutation of the items in at most max_steps_per_epoch
    batches of at least batch_items."""
    size = max(config.batch_items, -(-num_items // config.max_steps_per_epoch))
    order = rng.permutation(num_items)
    return [order[start:start + size] for start in range(0, num_items, size)]


def _rated_by(catalog: Catalog):
    """Each item's raters and their ratings, as [num_items, (raters)] ragged rows."""
    users, items, ratings = catalog.pairs()
    order = np.argsort(items, kind="stable")
    lengths = np.bincount(items, minlength=catalog.num_items)
    return (tf.RaggedTensor.from_row_lengths(users[order].astype(np.int64), lengths),
            tf.RaggedTensor.from_row_lengths(ratings[order].astype(np.float32), lengths))


def _rows(raters: tf.RaggedTensor, ratings: tf.RaggedTensor, items: tf.Tensor,
          num_users: int) -> tf.SparseTensor:
    """The given items' ratings as a sparse [len(items), num_users] matrix, its entries in
    user order, not the canonical row-major one (reorder it before an op that needs that,
    such as tf.sparse.to_dense): sparse_dense_matmul then walks the [users, hidden] tables
    (and writes their gradients) in order rather than at random — faster at MovieLens-10M's
    shape, sorting included (TF's docs recommend this column-major order for it)."""
    users = tf.gather(raters, items)
    order = tf.argsort(users.flat_values, stable=True)
    return tf.sparse.SparseTensor(
        tf.gather(tf.stack([users.value_rowids(), users.flat_values], axis=1), order),
        tf.gather(tf.gather(ratings, items).flat_values, order),
        tf.stack([tf.shape(items, out_type=tf.int64)[0], num_users]))


@dataclasses.dataclass
class FittedAutoencoder:
    tables: TableModel  # rating tables (no ranking of its own: the ranking fields are zeros)
    variables: List[tf.Variable]  # what an export saves for the next run's warm start
    warm_start: Optional[WarmStartReport]  # None for a cold start
    epochs: int  # trained (epochs or warm_start_epochs)


def fit_item_autoencoder(catalog: Catalog, config: AutoencoderConfig, previous=None,
                         ids=None) -> FittedAutoencoder:
    """Trains on every item's observed ratings, items shuffled into new batches each epoch.
    previous: (weights, ids) of the model in service (warm_start.load_previous) and ids this
    run's ids per vocabulary: where it carried the encoder and decoder over (a changed hidden
    width carries neither), warm_start_epochs are trained instead of epochs."""
    model = ItemAutoencoder(catalog.num_users, config.hidden, config.seed)
    report = warm_start(model.variables, previous[0], previous[1], ids) if previous else None
    epochs = (config.warm_start_epochs if report is not None and report.carried(WARM_ROWS)
              else config.epochs)
    optimizer = fused_adam(config.learning_rate)
    create_slots(optimizer, model.weights)
    raters, ratings = _rated_by(catalog)
    num_users = tf.constant(catalog.num_users, tf.int64)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)], autograph=False)
    def step(items):
        gradients = model.gradients(_rows(raters, ratings, items, num_users),
                                    config.l2 / config.batch_items)
        optimizer.apply_gradients(zip(gradients, model.weights))

    shuffle = np.random.default_rng(config.seed)
    for _ in range(epochs):
        for items in epoch_batches(catalog.num_items, config, shuffle):
            step(items)
    codes = model.codes(_rows(raters, ratings, np.arange(catalog.num_items), num_users))
    tables = TableModel(
        global_bias=0.0, user_vectors=model.decoder.numpy(),
        user_biases=model.decoder_bias.numpy(), item_vectors=codes.numpy(),
        item_biases=np.zeros(catalog.num_items, np.float32),
        item_rank_biases=np.zeros(catalog.num_items, np.float32))
    return FittedAutoencoder(tables, list(model.variables), report, epochs)
