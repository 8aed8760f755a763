"""Weighted alternating least squares (WALS) matrix factorization, in TensorFlow.

The ratings matrix A (users × items) is approximated as A ≈ μ + b·1ᵀ + 1·cᵀ + U·Vᵀ by minimizing

    Σ_obs w_ij (t_ij − p_ij)² + w0 Σ_unobs p_ij² + λ (‖U‖² + ‖V‖² + ‖b‖² + ‖c‖²)

where p_ij = μ + b_i + c_j + u_i·v_j. Fixing V (and c) makes this an independent ridge regression
per user, solved in closed form for [u_i, b_i]; then the same for items; repeat. Each half-step is
an exact minimization, so the objective never increases.

Two regimes, chosen by `unobserved_weight` (w0):

- Explicit rating prediction (w0 = 0, `fit_biases=True`): targets t are the ratings, only observed
  cells count, μ is the mean rating and the factors model what the biases leave over. This is
  "ALS with biases", the regime to use for RMSE.
- Implicit / weighted (w0 > 0): targets are 1 for every observed cell and 0 for every unobserved
  one, so the model learns *which* items a user rates; the rating (and the item's popularity) can
  only enter through the observed weight w_ij. This is the regime to use for top-K ranking.

The unobserved term never materializes the dense matrix: with Y the fixed side, the normal
equations of row i are (w0·YᵀY + Σ_obs (w_ij − w0) y_j y_jᵀ + λI) x_i = rhs_i, where YᵀY is one
k×k Gramian shared by all rows and the observed sums are segment sums over the observed entries.
"""

import collections
import dataclasses
import math
from typing import Iterator

import numpy as np
import tensorflow as tf

_F64 = tf.float64


@dataclasses.dataclass(frozen=True)
class WalsConfig:
    """Hyperparameters of `fit_wals`.

    The observed weight is w_ij = (observed_weight + rating_weight·r_ij) · (n_j / n̄)^
    popularity_exponent, where n_j is item j's number of observations and n̄ their mean: a positive
    rating_weight trusts high ratings more (the confidence of Hu, Koren & Volinsky); a negative
    popularity_exponent keeps popular items from dominating the objective, a positive one favours
    them. `dim=0` with `fit_biases=True` is the biases-only baseline. `chunk_rows` bounds memory:
    at most that many rows are solved at once and at most that many observed entries have their
    (dim+1)² outer products materialized at once.
    """

    dim: int = 20
    regularization: float = 1.0
    unobserved_weight: float = 0.0
    iterations: int = 10
    seed: int = 0
    fit_biases: bool = True
    observed_weight: float = 1.0
    rating_weight: float = 0.0
    popularity_exponent: float = 0.0
    chunk_rows: int = 2048

    def __post_init__(self):
        if self.dim < 0 or (self.dim == 0 and not self.fit_biases):
            raise ValueError("dim must be positive (or 0 with fit_biases for a biases-only model)")
        if self.regularization <= 0:
            raise ValueError("regularization must be positive, or the solves can be singular")
        if self.unobserved_weight < 0:
            raise ValueError("unobserved_weight must be non-negative")
        if self.iterations < 1 or self.chunk_rows < 1:
            raise ValueError("iterations and chunk_rows must be at least 1")


@dataclasses.dataclass(frozen=True)
class WalsFactors:
    """A fitted factorization; prediction is μ + b_user + c_item + ⟨user, item⟩."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float

    def predict(self, user_index, item_index) -> np.ndarray:
        users, items = np.asarray(user_index), np.asarray(item_index)
        return (self.global_mean + self.user_bias[users] + self.item_bias[items]
                + np.einsum("nk,nk->n", self.user_factors[users], self.item_factors[items]))

    def scores(self, user_index) -> np.ndarray:
        """Predictions of every item for each given user, [n, num_items], for top-K ranking."""
        users = np.asarray(user_index)
        return (self.global_mean + self.user_bias[users][:, None] + self.item_bias[None, :]
                + self.user_factors[users] @ self.item_factors.T)


def fit_wals(user_index, item_index, ratings, num_users: int, num_items: int,
             config: WalsConfig = WalsConfig()) -> WalsFactors:
    """Runs `config.iterations` alternating sweeps and returns the final factors."""
    sweeps = iterate_wals(user_index, item_index, ratings, num_users, num_items, config)
    return collections.deque(sweeps, maxlen=1)[0]


def iterate_wals(user_index, item_index, ratings, num_users: int, num_items: int,
                 config: WalsConfig = WalsConfig()) -> Iterator[WalsFactors]:
    """Yields the factors after each sweep (users, then items), so callers can watch the loss."""
    users, items, targets, weights = _observations(
        user_index, item_index, ratings, num_users, num_items, config)
    w0 = config.unobserved_weight
    # The best constant under the same weights: the mean rating when w0 = 0.
    global_mean = (float(weights @ targets)
                   / (weights.sum() + w0 * (num_users * num_items - len(targets)))
                   if config.fit_biases else 0.0)
    by_user = _Entries.sorted_by(users, items, weights - w0, weights * targets, num_users)
    by_item = _Entries.sorted_by(items, users, weights - w0, weights * targets, num_items)

    rng = np.random.default_rng(config.seed)
    # Item vectors of norm ~1 whatever the dim; users need no start, they are solved first.
    item_factors = rng.normal(0.0, 1.0 / math.sqrt(max(config.dim, 1)), (num_items, config.dim))
    item_bias = np.zeros(num_items)
    for _ in range(config.iterations):
        user_factors, user_bias = _solve_side(by_user, item_factors, item_bias, global_mean, config)
        item_factors, item_bias = _solve_side(by_item, user_factors, user_bias, global_mean, config)
        yield WalsFactors(user_factors, item_factors, user_bias, item_bias, global_mean)


def wals_loss(factors: WalsFactors, user_index, item_index, ratings,
              config: WalsConfig) -> float:
    """The objective WALS minimizes (see the module docstring), without a dense matrix."""
    num_users, num_items = len(factors.user_bias), len(factors.item_bias)
    users, items, targets, weights = _observations(
        user_index, item_index, ratings, num_users, num_items, config)
    predicted = factors.predict(users, items)
    loss = float(weights @ (targets - predicted) ** 2)
    if config.unobserved_weight > 0:
        # Σ over all cells of p_ij², as ⟨ŨᵀŨ, ṼᵀṼ⟩ with ũ = [u, b, 1] and ṽ = [v, 1, μ + c].
        u_aug = np.column_stack([factors.user_factors, factors.user_bias, np.ones(num_users)])
        v_aug = np.column_stack([factors.item_factors, np.ones(num_items),
                                 factors.global_mean + factors.item_bias])
        all_cells = float(np.sum((u_aug.T @ u_aug) * (v_aug.T @ v_aug)))
        loss += config.unobserved_weight * (all_cells - float(predicted @ predicted))
    penalty = sum(float(np.sum(x ** 2)) for x in (
        factors.user_factors, factors.item_factors, factors.user_bias, factors.item_bias))
    return loss + config.regularization * penalty


def _observations(user_index, item_index, ratings, num_users, num_items, config):
    """Validated (users, items, targets, weights) as the objective sees them."""
    users = np.asarray(user_index, dtype=np.int64)
    items = np.asarray(item_index, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float64)
    if not users.shape == items.shape == ratings.shape or users.ndim != 1:
        raise ValueError("user_index, item_index and ratings must be 1-D and of equal length")
    if len(users) and (users.min() < 0 or users.max() >= num_users
                       or items.min() < 0 or items.max() >= num_items):
        raise ValueError("user_index and item_index must lie in [0, num_users) and [0, num_items)")
    # A repeated cell would have its unobserved weight subtracted twice.
    if len(np.unique(users * num_items + items)) != len(users):
        raise ValueError("each (user, item) pair may be observed only once")
    weights = config.observed_weight + config.rating_weight * ratings
    if config.popularity_exponent:
        counts = np.bincount(items, minlength=num_items)
        weights = weights * (counts[items] / counts[items].mean()) ** config.popularity_exponent
    if np.any(weights < 0):
        raise ValueError("observed weights must be non-negative")
    targets = ratings if config.unobserved_weight == 0 else np.ones_like(ratings)
    return users, items, targets, weights


@dataclasses.dataclass(frozen=True)
class _Entries:
    """Observed entries sorted by the side being solved, so each chunk of rows is one slice."""

    rows: np.ndarray
    cols: np.ndarray
    excess_weight: np.ndarray  # w_ij − w0: what the shared Gramian gets wrong for this cell
    weighted_target: np.ndarray  # w_ij · t_ij
    starts: np.ndarray  # entries of row r are [starts[r], starts[r + 1])

    @classmethod
    def sorted_by(cls, rows, cols, excess_weight, weighted_target, num_rows):
        order = np.argsort(rows, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num_rows))])
        return cls(rows[order], cols[order], excess_weight[order], weighted_target[order], starts)


def _solve_side(entries: _Entries, fixed_factors, fixed_bias, global_mean, config):
    """Solves every row of one side given the other side; returns (factors, biases)."""
    # With biases, the fixed side gains a constant column (its coefficient is the solved bias) and
    # its own bias joins μ as a known offset of every cell in its column.
    if config.fit_biases:
        fixed = np.column_stack([fixed_factors, np.ones(len(fixed_factors))])
    else:
        fixed = fixed_factors
    offset = global_mean + fixed_bias
    w0 = config.unobserved_weight
    k = fixed.shape[1]
    shared_gram = w0 * fixed.T @ fixed + config.regularization * np.eye(k)
    shared_rhs = -w0 * fixed.T @ offset  # unobserved cells pull p_ij = offset_j + x_i·y_j to 0
    fixed_t, offset_t = tf.constant(fixed, _F64), tf.constant(offset, _F64)

    num_rows = len(entries.starts) - 1
    step = config.chunk_rows
    solution = np.empty((num_rows, k))
    for r0 in range(0, num_rows, step):
        r1 = min(r0 + step, num_rows)
        grams, rhs = np.zeros((r1 - r0, k, k)), np.zeros((r1 - r0, k))
        for e0 in range(entries.starts[r0], entries.starts[r1], step):
            e1 = min(e0 + step, entries.starts[r1])
            first, last = entries.rows[e0], entries.rows[e1 - 1]
            block_grams, block_rhs = _observed_sums(
                fixed_t, offset_t, entries.cols[e0:e1], entries.rows[e0:e1] - first,
                entries.excess_weight[e0:e1], entries.weighted_target[e0:e1], last - first + 1)
            grams[first - r0:last - r0 + 1] += block_grams.numpy()
            rhs[first - r0:last - r0 + 1] += block_rhs.numpy()
        solution[r0:r1] = _cholesky_solve(grams, rhs, shared_gram, shared_rhs).numpy()
    if config.fit_biases:
        return solution[:, :-1], solution[:, -1]
    return solution, np.zeros(num_rows)


_VECTOR, _INDICES = tf.TensorSpec([None], _F64), tf.TensorSpec([None], tf.int64)


@tf.function(input_signature=[tf.TensorSpec([None, None], _F64), _VECTOR, _INDICES, _INDICES,
                              _VECTOR, _VECTOR, tf.TensorSpec([], tf.int64)])
def _observed_sums(fixed, offset, cols, segments, excess_weight, weighted_target, num_segments):
    """Per-row Σ (w − w0) y yᵀ and Σ (w·t − (w − w0)·offset) y over one block of entries."""
    y = tf.gather(fixed, cols)
    outer = (excess_weight[:, None] * y)[:, :, None] * y[:, None, :]
    grams = tf.math.unsorted_segment_sum(outer, segments, num_segments)
    coefficient = weighted_target - excess_weight * tf.gather(offset, cols)
    rhs = tf.math.unsorted_segment_sum(coefficient[:, None] * y, segments, num_segments)
    return grams, rhs


@tf.function(input_signature=[tf.TensorSpec([None, None, None], _F64),
                              tf.TensorSpec([None, None], _F64),
                              tf.TensorSpec([None, None], _F64), _VECTOR])
def _cholesky_solve(grams, rhs, shared_gram, shared_rhs):
    """Solves the whole chunk's k×k systems at once; they are SPD since λ > 0."""
    cholesky = tf.linalg.cholesky(grams + shared_gram)
    return tf.linalg.cholesky_solve(cholesky, (rhs + shared_rhs)[:, :, None])[:, :, 0]
