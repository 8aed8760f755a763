"""A pushed model scored through its serving signatures on a protocol folder's test part: what
every quality figure of the benchmarks is."""

import os
from typing import Dict, List

import numpy as np

K = 10
BATCH = 4096


def evaluate(model_dir: str, protocol_dir: str, cold_users: bool,
             drop_rated: bool = False) -> Dict[str, float]:
    """Rating and top-k metrics of a pushed model on a protocol's test ratings. drop_rated:
    the items each user rated in the training part are taken out of the model's ranking (for
    a model that does not exclude them all itself: the gate's)."""
    from components import features as F
    from components.evaluation.ranking_eval import evaluate_ranking
    from components.example_gen.executor import to_example
    from data import raw_format as R
    from pipeline.serving import Recommender

    test_dir = os.path.join(protocol_dir, "eval")
    recommender = Recommender(model_dir)
    users = {u.user_id: u for u in R.read_table(test_dir, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(test_dir, R.ITEMS_FILE)}
    test = R.read_table(test_dir, R.RATINGS_FILE)
    predicted = []
    for start in range(0, len(test), BATCH):
        predicted += recommender.predict_ratings([
            to_example(r, users[r.user_id], items[r.item_id], 1).SerializeToString()
            for r in test[start:start + BATCH]])
    errors = np.array(predicted) - np.array([r.rating for r in test])
    relevant: Dict[str, List[str]] = {}
    for r in test:
        relevant.setdefault(r.user_id, []).append(r.item_id)
    rated = trained_items(protocol_dir)
    already_rated = 0

    def recommend(user_ids, k):
        nonlocal already_rated
        deep = k + max(len(rated.get(u, ())) for u in user_ids) if drop_rated else k
        rows = (recommender.recommend(user_ids, deep) if not cold_users else
                recommender.recommend(user_ids, deep, {
                    F.AGE: [users[u].age for u in user_ids],
                    F.GENDER: [users[u].gender for u in user_ids],
                    F.OCCUPATION: [users[u].occupation for u in user_ids],
                    F.ZIP_CODE: [users[u].zip_code for u in user_ids]}))
        if drop_rated:
            rows = [[(i, score) for i, score in top if i not in rated.get(u, ())][:k]
                    for u, top in zip(user_ids, rows)]
        already_rated += sum(len({i for i, _ in top} & rated.get(u, set()))
                             for u, top in zip(user_ids, rows))
        return rows

    metrics = evaluate_ranking(recommend, relevant, K)
    metrics.update(rmse=float(np.sqrt(np.mean(errors ** 2))), mae=float(np.mean(np.abs(errors))),
                   test_ratings=len(test), test_users=len(relevant),
                   already_rated_in_top_k=already_rated)
    return metrics


def trained_items(protocol_dir: str) -> Dict[str, set]:
    """user id → the items they rated in the protocol's training part."""
    from data import raw_format as R

    rated: Dict[str, set] = {}
    for r in R.read_table(os.path.join(protocol_dir, "train"), R.RATINGS_FILE):
        rated.setdefault(r.user_id, set()).add(r.item_id)
    return rated
