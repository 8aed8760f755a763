"""The hybrid towers' training step alone at a dataset's shape: the Trainer's model
(`components.training.trainer.hybrid_model`, default settings) on random histories and batches of
MovieLens-100K's, -1M's and -10M's sizes. A step's cost depends on the shapes (users, items,
ratings per user, batch), not on the values, so this isolates how it grows with the data
without running the pipeline at 10M. `--profile` adds the ops that take the most time.

Usage: python -m bench.towers_step [--shapes 100k,1m,10m] [--steps 40] [--profile]
"""

import argparse
import collections
import glob
import os
import statistics
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

from bench.scale_bench import SIZES

SHAPES = {"100k": (943, 1682, 100_000), **SIZES}  # users, items, ratings
TRAIN_SHARE = 0.8  # ExampleGen's hash split: the Trainer sees 4 of 5 ratings
BATCHES = 8  # distinct random batches, cycled
# Title words of the random items, at the vocabulary's cap (features.TITLE_WORDS); the towers
# read them with training.title_words only.
TITLE_WORDS = 5000


def _catalog(users: int, items: int, ratings: int, rng: np.random.Generator):
    from components.training.catalog import Catalog

    counts = np.maximum(rng.poisson(ratings * TRAIN_SHARE / users, users), 1)
    splits = np.concatenate([[0], np.cumsum(counts), [counts.sum()]]).astype(np.int64)
    seen_items = rng.integers(0, items, splits[-1])
    genres = [rng.integers(0, 19, rng.integers(1, 4)) for _ in range(items)]
    return Catalog(user_features={}, item_year_buckets=rng.integers(0, 10, items),
                   item_genres=genres,
                   item_title_tokens=[rng.integers(0, TITLE_WORDS, rng.integers(1, 5))
                                      for _ in range(items)],
                   seen_splits=splits, seen_items=seen_items,
                   seen_ratings=rng.integers(1, 6, splits[-1]).astype(np.float32),
                   popularity=np.bincount(seen_items, minlength=items) / splits[-1],
                   mean_rating=3.5, num_ratings=int(splits[-1]))


def _batch(catalog, size: int, rng: np.random.Generator):
    """Training examples drawn by rating, so active users appear as often as they do."""
    import tensorflow as tf

    from components import features as F

    rows = rng.integers(0, catalog.num_ratings, size)
    users = np.searchsorted(catalog.seen_splits, rows, side="right") - 1
    genres = tf.RaggedTensor.from_row_lengths(rng.integers(0, 19, 2 * size),
                                              np.full(size, 2)).to_sparse()
    features = {F.USER_INDEX: users, F.ITEM_INDEX: catalog.seen_items[rows],
                F.AGE_BUCKET: rng.integers(0, 7, size), F.GENDER_INDEX: rng.integers(0, 2, size),
                F.OCCUPATION_INDEX: rng.integers(0, 21, size),
                F.ZIP_PREFIX_INDEX: rng.integers(0, 100, size),
                F.YEAR_BUCKET: rng.integers(0, 10, size)}
    features = {name: tf.constant(values, tf.int64) for name, values in features.items()}
    features[F.GENRE_INDICES] = genres
    features[F.TITLE_TOKENS] = tf.RaggedTensor.from_row_lengths(
        rng.integers(0, TITLE_WORDS, 3 * size), np.full(size, 3)).to_sparse()
    return features, tf.constant(catalog.seen_ratings[rows])


def _step(shape: Tuple[int, int, int], seed: int):
    """The Trainer's compiled train step at this shape, built and traced, and its batches."""
    import tensorflow as tf

    from components.models.hybrid import Vocabularies
    from components.training.adam import create_slots
    from components.training.trainer import TrainingConfig, hybrid_model

    users, items, ratings = shape
    config = TrainingConfig()
    rng = np.random.default_rng(seed)
    catalog = _catalog(users, items, ratings, rng)
    vocab = Vocabularies(users=users + 1, items=items + 1, age_buckets=8, genders=3,
                         occupations=22, zip_prefixes=101, year_buckets=11, genres=20,
                         title_tokens=TITLE_WORDS + 1)
    tf.keras.utils.set_random_seed(seed)
    model = hybrid_model(config, vocab, catalog)
    batches = [_batch(catalog, config.batch_size, rng) for _ in range(BATCHES)]
    model(batches[0][0])
    create_slots(model.optimizer, model.trainable_variables)
    step = tf.function(model.train_step, reduce_retracing=True)
    for batch in batches[:3]:
        step(batch)
    return step, batches, config.batch_size


def _run(step, batches, steps: int) -> List[float]:
    """Seconds of each step, the result read back each time (TF runs eagerly ahead)."""
    times = []
    for index in range(steps):
        start = time.perf_counter()
        float(step(batches[index % len(batches)])["rating_mse"])
        times.append(time.perf_counter() - start)
    return times


def _top_ops(step, batches, steps: int, count: int) -> List[Tuple[str, float]]:
    """The ops that took the most time per step, from TF's profiler trace (op time summed
    over the threads that ran them)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with tempfile.TemporaryDirectory(prefix="towers-profile-") as folder:
        tf.profiler.experimental.start(folder)
        _run(step, batches, steps)
        tf.profiler.experimental.stop()
        for path in glob.glob(f"{folder}/**/*.xplane.pb", recursive=True):
            with open(path, "rb") as handle:
                space.ParseFromString(handle.read())
    totals: Dict[str, float] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name.replace("::", ""):  # an op (name:type), not the executor's spans
                    totals[name] += event.duration_ps / 1e9 / steps
    return totals.most_common(count)


def measure(shape: Tuple[int, int, int], steps: int, profile: int = 0, seed: int = 0) -> dict:
    """Median milliseconds per step and examples per second; with profile > 0, that many
    of the costliest ops (name, milliseconds per step)."""
    step, batches, batch_size = _step(shape, seed)
    milliseconds = statistics.median(_run(step, batches, steps)) * 1000
    report = {"ms_per_step": milliseconds, "examples_per_second": batch_size / milliseconds * 1000}
    if profile:
        report["top_ops"] = _top_ops(step, batches, min(steps, 10), profile)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="list the 15 costliest ops")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the profiler's session logs
    for name in args.shapes.split(","):
        report = measure(SHAPES[name], args.steps, profile=15 if args.profile else 0)
        users, items, ratings = SHAPES[name]
        print(f"{name} ({users:,} users, {items:,} items, {ratings:,} ratings): "
              f"{report['ms_per_step']:.1f} ms a step, "
              f"{report['examples_per_second']:,.0f} examples/s")
        for op, milliseconds in report.get("top_ops", []):
            print(f"  {milliseconds:7.2f} ms  {op}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
