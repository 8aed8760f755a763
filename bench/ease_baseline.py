"""EASE (Steck 2019) as anyone writes it: the quality benchmark's item-item peer.

B = -P / diag(P) with P = (XᵀX + λI)⁻¹ over the binary user × item matrix X of a protocol's
training part, diagonal zeroed; a user's scores are their row of X·B, rated items excluded.
λ is chosen on a validation slice of the training part (bench/protocols.py), never on its test.
"""

import os
from typing import Dict, List, Sequence

import numpy as np

from components.evaluation.ranking_eval import evaluate_ranking
from data import raw_format as R

LAMBDAS = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
K = 10


def _ratings(folder: str):
    return [(r.user_id, r.item_id) for r in R.read_table(folder, R.RATINGS_FILE)]


def ease_recommend(train: Sequence[tuple], regularization: float):
    """recommend(user_ids, k) → [[(item, score)]] of EASE fitted on (user, item) pairs."""
    users = {u: n for n, u in enumerate(sorted({u for u, _ in train}))}
    items = sorted({i for _, i in train})
    item_index = {i: n for n, i in enumerate(items)}
    rated = np.zeros((len(users), len(items)))
    rated[[users[u] for u, _ in train], [item_index[i] for _, i in train]] = 1.0
    inverse = np.linalg.inv(rated.T @ rated + regularization * np.eye(len(items)))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    scores = np.where(rated > 0, -np.inf, rated @ weights)

    def recommend(user_ids, k):
        rows = []
        for user in user_ids:  # an unknown user has no history: nothing EASE can rank
            top = np.argsort(-scores[users[user]])[:k] if user in users else []
            rows.append([(items[i], float(scores[users[user], i])) for i in top])
        return rows

    return recommend


def _relevant(folder: str) -> Dict[str, List[str]]:
    relevant: Dict[str, List[str]] = {}
    for user, item in _ratings(folder):
        relevant.setdefault(user, []).append(item)
    return relevant


def score(protocol_dir: str, regularization: float) -> Dict[str, float]:
    """EASE fitted on protocol_dir/train, scored on protocol_dir/eval."""
    train = _ratings(os.path.join(protocol_dir, "train"))
    return evaluate_ranking(ease_recommend(train, regularization),
                            _relevant(os.path.join(protocol_dir, "eval")), K)


def tuned(protocol_dir: str, validation_dir: str, metric: str = "ndcg@10") -> Dict[str, float]:
    """The test metrics of EASE at the λ best on the validation slice, with that λ."""
    by_lambda = {lam: score(validation_dir, lam)[metric] for lam in LAMBDAS}
    best = max(by_lambda, key=by_lambda.get)
    return {**score(protocol_dir, best), "lambda": best,
            "validation": {str(lam): value for lam, value in by_lambda.items()}}
