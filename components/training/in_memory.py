"""A split's transformed examples, parsed once and held as tensors, batched anew each epoch.

Re-parsing every tf.Example each epoch was most of an epoch's time (docs/design.md). The
Trainer already holds every rating in memory (the catalog and the history encoder are built
from them), so keeping the parsed columns costs about 80 bytes a rating more.
"""

import dataclasses
from typing import Dict, Iterable

import numpy as np
import tensorflow as tf

Features = Dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class InMemoryExamples:
    """Columns of every example; sparse (multivalent) features held as ragged rows."""

    features: Dict[str, tf.Tensor]
    labels: tf.Tensor

    @classmethod
    def read(cls, batches: Iterable) -> "InMemoryExamples":
        """One pass over (features, label) batches, e.g. a tfxio dataset without shuffling."""
        columns: Dict[str, list] = {}
        labels = []
        for features, label in batches:
            for name, value in features.items():
                if isinstance(value, tf.SparseTensor):
                    value = tf.RaggedTensor.from_sparse(value)
                columns.setdefault(name, []).append(value)
            labels.append(label)
        return cls({name: tf.concat(parts, axis=0) for name, parts in columns.items()},
                   tf.concat(labels, axis=0))

    def concatenated(self, other: "InMemoryExamples") -> "InMemoryExamples":
        """These examples followed by other's (the same columns)."""
        return InMemoryExamples(
            {name: tf.concat([column, other.features[name]], axis=0)
             for name, column in self.features.items()},
            tf.concat([self.labels, other.labels], axis=0))

    def in_canonical_order(self) -> "InMemoryExamples":
        """Sorted by the label and every single-valued column. ExampleGen writes examples in
        whatever order Beam's workers finish; the model trained (its batches, the catalog's
        histories) must not depend on that."""
        names = sorted(name for name, column in self.features.items()
                       if not isinstance(column, tf.RaggedTensor))
        order = np.lexsort([self.labels.numpy()] + [self.features[name].numpy()
                                                     for name in reversed(names)])
        return InMemoryExamples({name: tf.gather(column, order)
                                 for name, column in self.features.items()},
                                tf.gather(self.labels, order))

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def steps(self, batch_size: int) -> int:
        """Batches in one pass."""
        return -(-self.size // batch_size)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                endless: bool = False) -> tf.data.Dataset:
        """(features, label) batches as the tfxio dataset gives them (sparse features as
        SparseTensors); shuffled anew each pass when asked. endless: pass after pass, each
        `steps(batch_size)` batches long, from one iterator (Keras makes a new iterator per
        epoch otherwise, and making one re-serializes the columns it captures)."""
        passes = tf.data.Dataset.counter() if endless else tf.data.Dataset.range(1)
        lengths = [batch_size] * (self.size // batch_size) + (
            [self.size % batch_size] if self.size % batch_size else [])

        def order(pass_index):
            """One pass's row numbers cut into batches. Shuffled, they are one permutation
            tensor: a shuffle buffer of row numbers holds one tensor per row, refilled each
            pass and slow to tear down when training ends."""
            rows = tf.range(self.size, dtype=tf.int64)
            if shuffle:
                rows = tf.random.experimental.stateless_shuffle(
                    rows, seed=tf.stack([tf.constant(seed, tf.int64), pass_index]))
            return tf.data.Dataset.from_tensor_slices(
                tf.RaggedTensor.from_row_lengths(rows, lengths))

        # tf.data's autotuning off (AUTOTUNE then means one call per core): with it on, `fit`
        # often returned seconds after its last epoch, its teardown waiting on the item
        # autoencoder's thread beside it.
        options = tf.data.Options()
        options.autotune.enabled = False
        return (passes.flat_map(order)
                .map(self._gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .prefetch(tf.data.AUTOTUNE)
                .with_options(options))

    def _gather(self, rows: tf.Tensor):
        features = {}
        for name, column in self.features.items():
            value = tf.gather(column, rows)
            features[name] = value.to_sparse() if isinstance(value, tf.RaggedTensor) else value
        return features, tf.gather(self.labels, rows)
