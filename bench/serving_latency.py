"""`recommend` latency from a pushed SavedModel, in process: top-10 for one user at a time
(p50, p99 over many users, after a warm-up) and for every user in one batch.

Usage: python -m bench.serving_latency --model SERVING_VERSION_DIR --data RAW_DIR
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Dict, List, Optional

WARM_UP_CALLS = 20
SINGLE_USER_CALLS = 300
BATCH_CALLS = 5


def _percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(model_dir: str, user_ids: List[str], k: int = 10, seed: int = 0,
            batch_users: Optional[int] = None) -> Dict[str, float]:
    """Milliseconds for one user (p50, p99) and seconds for all user_ids in one call (or for
    batch_users of them, drawn at random)."""
    import tensorflow as tf

    recommend = tf.saved_model.load(model_dir).signatures["recommend"]
    rng = random.Random(seed)
    k_tensor = tf.constant(k)
    for user in rng.choices(user_ids, k=WARM_UP_CALLS):
        recommend(user_id=tf.constant([user]), k=k_tensor)
    single = []
    for user in rng.choices(user_ids, k=SINGLE_USER_CALLS):
        start = time.perf_counter()
        recommend(user_id=tf.constant([user]), k=k_tensor)["item_ids"].numpy()
        single.append((time.perf_counter() - start) * 1000)
    if batch_users is not None and batch_users < len(user_ids):
        user_ids = rng.sample(user_ids, batch_users)
    everyone = tf.constant(user_ids)
    recommend(user_id=everyone, k=k_tensor)
    batch = []
    for _ in range(BATCH_CALLS):
        start = time.perf_counter()
        recommend(user_id=everyone, k=k_tensor)["item_ids"].numpy()
        batch.append(time.perf_counter() - start)
    return {"one_user_p50_ms": statistics.median(single),
            "one_user_p99_ms": _percentile(single, 0.99),
            "all_users_seconds": statistics.median(batch), "users": len(user_ids)}


def known_users(data_dir: str) -> List[str]:
    from data import raw_format as R

    return sorted({rating.user_id for rating in R.read_table(data_dir, R.RATINGS_FILE)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a pushed version folder")
    parser.add_argument("--data", required=True, help="the raw folder the model was trained on")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    print(json.dumps(measure(args.model, known_users(args.data)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
