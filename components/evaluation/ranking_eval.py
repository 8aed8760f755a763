"""Top-k quality of a SavedModel's `recommend` signature on held-out ratings.

Shared by the release gate (components/release_gate/component.py) and the quality benchmark, so the
metric that blesses a model is the one the benchmark reports.
"""

import dataclasses
import glob
import os
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components import features as F
from components.evaluation.ranking_metrics import ranking_metrics

Recommend = Callable[[Sequence[str], int], List[List[Tuple[str, float]]]]
BATCH = 4096


@dataclasses.dataclass
class HeldOut:
    relevant: Dict[str, List[str]]  # user id → the item ids of their ratings in the split
    slices: Dict[str, Dict[str, str]]  # user id → slice feature → the user's value


def held_out(examples_uri: str, split: str, slice_features: Sequence[str] = ()) -> HeldOut:
    """One split of an Examples artifact, per user: the items rated and the slices' values."""
    files = glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    names = (F.USER_ID, F.ITEM_ID, *slice_features)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in names}
    relevant: Dict[str, List[str]] = {}
    slices: Dict[str, Dict[str, str]] = {}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH)
    for batch in dataset.map(lambda records: tf.io.parse_example(records, spec)):
        columns = [batch[name].numpy() for name in names]
        for user, item, *values in zip(*columns):
            user = user.decode()
            relevant.setdefault(user, []).append(item.decode())
            if user not in slices:
                slices[user] = {f: v.decode() for f, v in zip(slice_features, values)}
    return HeldOut(relevant, slices)


def signature_recommend(model) -> Recommend:
    """`recommend` of a loaded SavedModel as a plain function."""
    signature = model.signatures["recommend"]

    def recommend(user_ids: Sequence[str], k: int):
        outputs = signature(user_id=tf.constant(list(user_ids)), k=tf.constant(k))
        # Empty ids pad a row with fewer than k unseen items (components/serving/export.py).
        return [[(i.decode(), float(s)) for i, s in zip(ids, scores) if i]
                for ids, scores in zip(outputs["item_ids"].numpy(), outputs["scores"].numpy())]

    return recommend


def recommend_all(recommend: Recommend, users: Sequence[str], k: int
                  ) -> List[List[Tuple[str, float]]]:
    """The top k of every user, in batches."""
    recommended: List[List[Tuple[str, float]]] = []
    for start in range(0, len(users), BATCH):
        recommended += recommend(users[start:start + BATCH], k)
    return recommended


def ranking_of(recommended: Sequence[Sequence[Tuple[str, float]]],
               relevant: Sequence[Sequence[str]], k: int) -> Dict[str, float]:
    """NDCG@k, Precision@k, Recall@k and MAP of top-k lists against each user's relevant ids."""
    index: Dict[str, int] = {}
    number = lambda item: index.setdefault(item, len(index))  # noqa: E731
    top = np.array([[number(item) for item, _ in rows] + [-1] * (k - len(rows))
                    for rows in recommended]).reshape(len(recommended), k)
    return ranking_metrics(top, [np.array([number(i) for i in items]) for items in relevant], k)


def evaluate_ranking(recommend: Recommend, relevant: Dict[str, List[str]], k: int
                     ) -> Dict[str, float]:
    """NDCG@k, Precision@k, Recall@k and MAP over every user with held-out ratings."""
    users = sorted(relevant)
    return ranking_of(recommend_all(recommend, users, k), [relevant[u] for u in users], k)


def ranking_by_slice(recommended: Dict[str, Sequence[Tuple[str, float]]], held: HeldOut,
                     k: int) -> Dict[str, Dict[str, float]]:
    """"feature=value" → the ranking metrics of that slice's users, and how many they are."""
    members: Dict[str, List[str]] = {}
    for user, values in sorted(held.slices.items()):
        for feature, value in values.items():
            members.setdefault(f"{feature}={value}", []).append(user)
    return {name: {**ranking_of([recommended[u] for u in users],
                                [held.relevant[u] for u in users], k), "users": len(users)}
            for name, users in sorted(members.items())}
