"""`recommend`'s item-item term alone, whole rows against each item's k strongest neighbours,
at a catalog's shape: the served functions of components/serving/export.py, run block by block
with a top 10 as `recommend` runs them, on random weights and random histories of the given mean
length (timing does not depend on the values).

Usage: python -m bench.item_item_latency [--items 10677] [--rated 143] [--k 256]
"""

import argparse
import statistics
import sys
import time

import numpy as np

CALLS = 30
USERS = 943
TOP_K = 10


def _milliseconds(function, *args) -> float:
    function(*args)
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        [tensor.numpy() for tensor in function(*args)]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(items: int, rated: int, k: int, seed: int = 0) -> dict:
    """Median milliseconds for one user and for 943 users, each way."""
    import tensorflow as tf

    from components.models.item_item import strongest_neighbours
    from components.serving.export import neighbour_rows_sum, top_k_by_blocks, whole_rows_sum

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((items, items), dtype=np.float32)
    kept = strongest_neighbours(weights, k)
    lengths = rng.poisson(rated, USERS)
    histories = tf.RaggedTensor.from_row_lengths(
        rng.integers(0, items, lengths.sum()), lengths)
    matrix = tf.Variable(weights, trainable=False)
    indices = tf.Variable(kept.indices, trainable=False)
    kept_weights = tf.Variable(kept.weights, trainable=False)
    top = tf.constant(TOP_K)
    whole = tf.function(lambda seen: top_k_by_blocks(
        lambda rated: whole_rows_sum(rated, matrix), (seen,), top))
    neighbours = tf.function(lambda seen: top_k_by_blocks(
        lambda rated: neighbour_rows_sum(rated, indices, kept_weights, items), (seen,), top))
    return {f"{name} {users}": _milliseconds(function, histories[:users])
            for name, function in (("whole rows", whole), (f"k={k}", neighbours))
            for users in (1, USERS)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10677)
    parser.add_argument("--rated", type=int, default=143)
    parser.add_argument("--k", type=int, default=256)
    args = parser.parse_args(argv)
    for label, ms in measure(args.items, args.rated, args.k).items():
        print(f"{args.items} items, {args.rated} rated: {label} users {ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
