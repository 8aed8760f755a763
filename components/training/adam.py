"""Adam as one fused kernel per variable, for the towers and the item autoencoder.

Keras' current Adam writes its update as ~10 element-wise ops per variable (m, v, the step),
each a pass over the whole table; for a dense gradient (the towers' tables, whose L2 penalty
makes every row's gradient non-zero; the autoencoder's encoder and decoder) TF's
ResourceApplyAdam, which the legacy Adam calls, does the same update in one pass (a sparse
gradient takes its unfused path, the same arithmetic): m += (1 − β₁)(g − m), v += (1 − β₂)(g² − v),
w −= lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε) — the rule both implement. The gain is at large
tables (docs/design.md).
"""

from typing import Sequence

import tensorflow as tf


def fused_adam(learning_rate: float) -> tf.keras.optimizers.Optimizer:
    return tf.keras.optimizers.legacy.Adam(learning_rate)


def create_slots(optimizer: tf.keras.optimizers.Optimizer,
                 variables: Sequence[tf.Variable]) -> None:
    """The optimizer's moments and step counter created now, outside any traced step: a first
    trace that creates variables is traced a second time. The legacy
    optimizers create them in `_create_all_weights`, which `apply_gradients` calls."""
    optimizer._create_all_weights(variables)
