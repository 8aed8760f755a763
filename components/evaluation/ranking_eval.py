"""Top-k quality of a SavedModel's `recommend` signature on held-out ratings.

Shared by the release gate (components/release_gate/component.py) and the quality benchmark, so the
metric that blesses a model is the one the benchmark reports.
"""

import glob
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components import features as F
from components.evaluation.ranking_metrics import ranking_metrics

Recommend = Callable[[Sequence[str], int], List[List[Tuple[str, float]]]]
BATCH = 4096


def relevant_items(examples_uri: str, split: str) -> Dict[str, List[str]]:
    """user id → the item ids of their ratings in one split of an Examples artifact."""
    files = glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    spec = {F.USER_ID: tf.io.FixedLenFeature([], tf.string),
            F.ITEM_ID: tf.io.FixedLenFeature([], tf.string)}
    relevant: Dict[str, List[str]] = {}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH)
    for batch in dataset.map(lambda records: tf.io.parse_example(records, spec)):
        for user, item in zip(batch[F.USER_ID].numpy(), batch[F.ITEM_ID].numpy()):
            relevant.setdefault(user.decode(), []).append(item.decode())
    return relevant


def signature_recommend(model_dir: str) -> Recommend:
    """`recommend` of a SavedModel as a plain function."""
    signature = tf.saved_model.load(model_dir).signatures["recommend"]

    def recommend(user_ids: Sequence[str], k: int):
        outputs = signature(user_id=tf.constant(list(user_ids)), k=tf.constant(k))
        # Empty ids pad a row with fewer than k unseen items (components/serving/export.py).
        return [[(i.decode(), float(s)) for i, s in zip(ids, scores) if i]
                for ids, scores in zip(outputs["item_ids"].numpy(), outputs["scores"].numpy())]

    return recommend


def evaluate_ranking(recommend: Recommend, relevant: Dict[str, List[str]], k: int
                     ) -> Dict[str, float]:
    """NDCG@k, Precision@k, Recall@k and MAP over every user with held-out ratings."""
    users = sorted(relevant)
    recommended: List[List[Tuple[str, float]]] = []
    for start in range(0, len(users), BATCH):
        recommended += recommend(users[start:start + BATCH], k)
    index: Dict[str, int] = {}
    number = lambda item: index.setdefault(item, len(index))  # noqa: E731
    top = np.array([[number(item) for item, _ in rows] + [-1] * (k - len(rows))
                    for rows in recommended])
    return ranking_metrics(top, [np.array([number(i) for i in relevant[u]]) for u in users], k)
