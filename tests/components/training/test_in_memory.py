"""The Trainer's in-memory examples: the same rows in any file order give the same columns."""

import numpy as np
import tensorflow as tf

from components.training.in_memory import InMemoryExamples

RNG = np.random.default_rng(3)
USERS = RNG.integers(0, 5, 40)
ITEMS = RNG.integers(0, 8, 40)
LABELS = RNG.integers(1, 6, 40).astype(np.float32)
GENRES = [list(range(item % 3 + 1)) for item in ITEMS]


def _batches(order, batch_size):
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        genres = tf.ragged.constant([GENRES[row] for row in rows], dtype=tf.int64)
        yield ({"user_index": tf.constant(USERS[rows], tf.int64),
                "item_index": tf.constant(ITEMS[rows], tf.int64),
                "genre_indices": genres.to_sparse()}, tf.constant(LABELS[rows]))


def _columns(examples):
    return {name: (column.to_list() if isinstance(column, tf.RaggedTensor)
                   else column.numpy().tolist())
            for name, column in {**examples.features, "label": examples.labels}.items()}


def test_any_file_order_reads_to_the_same_columns():
    first = InMemoryExamples.read(_batches(np.arange(40), 16)).in_canonical_order()
    shuffled = InMemoryExamples.read(_batches(RNG.permutation(40), 7)).in_canonical_order()
    assert _columns(first) == _columns(shuffled)
    rows = sorted(zip(first.features["item_index"].numpy(), first.features["user_index"].numpy(),
                      first.labels.numpy()))
    assert rows == sorted(zip(ITEMS, USERS, LABELS))  # the same rows, none lost
    # Each row keeps its own genres (they follow the item).
    for item, genres in zip(first.features["item_index"].numpy(),
                            first.features["genre_indices"].to_list()):
        assert genres == list(range(item % 3 + 1))


def test_endless_shuffled_batches_cover_every_row_once_a_pass():
    examples = InMemoryExamples.read(_batches(np.arange(40), 16))
    assert examples.steps(16) == 3
    batches = iter(examples.batches(16, shuffle=True, seed=1, endless=True))
    passes = []
    for _ in range(3):  # three epochs of steps(16) batches, from one iterator
        labels = [next(batches)[1].numpy() for _ in range(examples.steps(16))]
        assert [len(batch) for batch in labels] == [16, 16, 8]
        passes.append(np.concatenate(labels))
    for labels in passes:
        np.testing.assert_array_equal(np.sort(labels), np.sort(LABELS))
    assert not np.array_equal(passes[0], passes[1])  # reshuffled each pass


def test_shuffled_order_follows_the_seed():
    examples = InMemoryExamples.read(_batches(np.arange(40), 16))

    def first_pass(seed):
        return np.concatenate([labels.numpy() for _, labels in
                               examples.batches(16, shuffle=True, seed=seed)])

    np.testing.assert_array_equal(first_pass(1), first_pass(1))
    assert not np.array_equal(first_pass(1), first_pass(2))
    unshuffled = np.concatenate([labels.numpy() for _, labels in examples.batches(16)])
    np.testing.assert_array_equal(unshuffled, examples.labels.numpy())


def test_training_batches_run_without_tf_data_autotuning():
    # With autotuning on, the Trainer's fit returned seconds late in about half the runs.
    examples = InMemoryExamples.read(_batches(np.arange(40), 16))
    for endless in (False, True):
        dataset = examples.batches(8, shuffle=True, endless=endless)
        assert dataset.options().autotune.enabled is False
