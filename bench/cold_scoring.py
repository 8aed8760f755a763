"""The cold-start protocols scored through a pushed model's signatures, with their anchors.

cold_items: a share of the movies held out with every rating, their metadata kept in
items.csv. Each test user's held-out movies are ranked among the held-out movies only
(NDCG@10, Recall@10, AUC); beside them, how many slots of the users' ordinary top 10 the new
movies take (a sane rate is neither none nor most).

few_answers: the cold_start protocol's held-out users, each revealing their first
FIRST_ANSWERS ratings by time, as a sign-up page asks; NDCG@10 and Recall@10 on the rest,
the answered movies left out of every ranking.
"""

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from bench.ease_baseline import LAMBDAS
from components.evaluation.ranking_metrics import ranking_metrics
from data import raw_format as R

K = 10
FIRST_ANSWERS = 5
BATCH = 256
# A ranking: user id → item ids, best first.
Rankings = Dict[str, List[str]]


def _table(protocol_dir: str, split: str, name: str) -> list:
    return R.read_table(os.path.join(protocol_dir, split), name)


def _by_user(ratings) -> Dict[str, list]:
    rows: Dict[str, list] = {}
    for rating in ratings:
        rows.setdefault(rating.user_id, []).append(rating)
    return rows


def auc(ranking: Sequence[str], relevant: set) -> float:
    """The share of (relevant, other) pairs of ranking that it orders relevant first."""
    positives = np.array([item in relevant for item in ranking])
    negatives = len(ranking) - positives.sum()
    if not positives.any() or not negatives:
        return float("nan")
    negatives_below = negatives - np.cumsum(~positives)[positives]
    return float(negatives_below.sum() / (positives.sum() * negatives))


def ranked_metrics(rankings: Rankings, relevant: Dict[str, List[str]], with_auc: bool
                   ) -> Dict[str, float]:
    users = sorted(relevant)
    index: Dict[str, int] = {}
    number = lambda item: index.setdefault(item, len(index))  # noqa: E731
    top = np.array([[number(i) for i in rankings[u][:K]] + [-1] * (K - len(rankings[u][:K]))
                    for u in users])
    metrics = ranking_metrics(top, [np.array([number(i) for i in relevant[u]]) for u in users], K)
    metrics = {key: metrics[key] for key in (f"ndcg@{K}", f"recall@{K}")}
    if with_auc:
        metrics["auc"] = float(np.nanmean([auc(rankings[u], set(relevant[u])) for u in users]))
    metrics["test_users"] = len(users)
    return metrics


# cold_items


def cold_items_setup(protocol_dir: str):
    """(the held-out items, each test user's held-out items)."""
    test = _table(protocol_dir, "eval", R.RATINGS_FILE)
    relevant = {user: [r.item_id for r in rows] for user, rows in _by_user(test).items()}
    return sorted({r.item_id for r in test}), relevant


def score_cold_items(model_dir: str, protocol_dir: str) -> Dict[str, float]:
    """A pushed model on cold_items, through `recommend` over the whole catalog."""
    from pipeline.serving import Recommender

    recommender = Recommender(model_dir)
    cold, relevant = cold_items_setup(protocol_dir)
    cold_set = set(cold)
    catalog = len(_table(protocol_dir, "train", R.ITEMS_FILE))
    users = sorted(relevant)
    rankings, slots = {}, 0
    for start in range(0, len(users), BATCH):
        batch = users[start:start + BATCH]
        for user, rows in zip(batch, recommender.recommend(batch, catalog)):
            ranking = [item for item, _ in rows]
            rankings[user] = [item for item in ranking if item in cold_set]
            slots += sum(item in cold_set for item in ranking[:K])
    metrics = ranked_metrics(rankings, relevant, with_auc=True)
    metrics["cold_share_of_top_10"] = slots / (K * len(users))
    metrics["cold_share_of_catalog"] = len(cold) / catalog
    return metrics


def genre_popularity(protocol_dir: str) -> Dict[str, float]:
    """The anchor anyone writes: a new movie is as popular as the movies of its genres are,
    on average (the same ranking for everyone)."""
    items = {i.item_id: i for i in _table(protocol_dir, "train", R.ITEMS_FILE)}
    counts: Dict[str, int] = {}
    for rating in _table(protocol_dir, "train", R.RATINGS_FILE):
        counts[rating.item_id] = counts.get(rating.item_id, 0) + 1
    per_genre: Dict[str, List[int]] = {}
    for item_id, count in counts.items():
        for genre in items[item_id].genres:
            per_genre.setdefault(genre, []).append(count)
    mean = {genre: np.mean(values) for genre, values in per_genre.items()}
    cold, relevant = cold_items_setup(protocol_dir)
    score = {item: np.mean([mean.get(g, 0.0) for g in items[item].genres] or [0.0])
             for item in cold}
    ranking = sorted(cold, key=lambda item: (-score[item], item))
    return ranked_metrics({user: ranking for user in relevant}, relevant, with_auc=True)


def lightfm(protocol_dir: str, components: int = 64, epochs: int = 30,
            seed: int = 42) -> Dict[str, float]:
    """LightFM (Kula 2015), the reference hybrid for cold start: WARP on the training part's
    ratings as implicit feedback, items as their id, genres and year decade (the held-out
    movies as genres and decade only), users as their id."""
    import scipy.sparse
    from lightfm import LightFM

    items = _table(protocol_dir, "train", R.ITEMS_FILE)
    train = _table(protocol_dir, "train", R.RATINGS_FILE)
    cold, relevant = cold_items_setup(protocol_dir)
    known = sorted({r.item_id for r in train})
    users = sorted({r.user_id for r in train} | set(relevant))
    item_row = {item.item_id: row for row, item in enumerate(items)}
    user_row = {user: row for row, user in enumerate(users)}
    identity = {item: column for column, item in enumerate(known)}
    genres = sorted({g for item in items for g in item.genres})
    genre_column = {g: len(known) + n for n, g in enumerate(genres)}
    decade_base = len(known) + len(genres)
    cells = []
    for item in items:
        row = item_row[item.item_id]
        if item.item_id in identity:
            cells.append((row, identity[item.item_id]))
        cells += [(row, genre_column[g]) for g in item.genres]
        cells.append((row, decade_base + (item.year // 10 - 180 if item.year else 31)))
    rows, columns = zip(*cells)
    features = scipy.sparse.csr_matrix((np.ones(len(cells), np.float32), (rows, columns)),
                                       shape=(len(items), decade_base + 32))
    interactions = scipy.sparse.coo_matrix(
        (np.ones(len(train), np.float32),
         ([user_row[r.user_id] for r in train], [item_row[r.item_id] for r in train])),
        shape=(len(users), len(items)))
    model = LightFM(no_components=components, loss="warp", random_state=seed)
    model.fit(interactions, item_features=features, epochs=epochs, num_threads=2)
    cold_rows = np.array([item_row[i] for i in cold], np.int32)
    rankings = {}
    for user in relevant:
        scores = model.predict(user_row[user], cold_rows, item_features=features)
        rankings[user] = [cold[n] for n in np.argsort(-scores, kind="stable")]
    return ranked_metrics(rankings, relevant, with_auc=True)


# few_answers


Answers = Dict[str, Dict[str, float]]  # user → item → rating


def few_answers_setup(protocol_dir: str) -> Tuple[Answers, Dict[str, List[str]]]:
    """(each held-out user's first answers: item → rating, the items they rated after)."""
    answers, relevant = {}, {}
    for user, rows in _by_user(_table(protocol_dir, "eval", R.RATINGS_FILE)).items():
        rows = sorted(rows, key=lambda r: (r.timestamp, r.item_id))
        answers[user] = {r.item_id: r.rating for r in rows[:FIRST_ANSWERS]}
        relevant[user] = [r.item_id for r in rows[FIRST_ANSWERS:]]
    return answers, {u: items for u, items in relevant.items() if items}


def _without_answers(rows, answered) -> List[str]:
    return [item for item, _ in rows if item not in answered][:K]


def score_few_answers(model_dir: str, protocol_dir: str, demographics_only: bool = False
                      ) -> Dict[str, float]:
    """A pushed model on few_answers through `recommend_from_answers` (or, demographics_only,
    `recommend_with_features`, which knows none of the answers)."""
    from components import features as F
    from pipeline.serving import Recommender

    recommender = Recommender(model_dir)
    answers, relevant = few_answers_setup(protocol_dir)
    users = {u.user_id: u for u in _table(protocol_dir, "eval", R.USERS_FILE)}
    rankings = {}
    for user in relevant:
        if demographics_only:
            person = users[user]
            [rows] = recommender.recommend([user], K + FIRST_ANSWERS, {
                F.AGE: [person.age], F.GENDER: [person.gender],
                F.OCCUPATION: [person.occupation], F.ZIP_CODE: [person.zip_code]})
        else:
            rows = recommender.recommend_from_answers(answers[user], k=K)
        rankings[user] = _without_answers(rows, answers[user])
    return ranked_metrics(rankings, relevant, with_auc=False)


def ease_fold_in(protocol_dir: str, regularization: float) -> Dict[str, float]:
    """EASE fitted on the training part; a held-out user's scores are the rows of their
    answered movies summed (EASE needs no retraining for a new user)."""
    return ranked_metrics(_ease_rankings(protocol_dir, regularization), few_answers_setup(
        protocol_dir)[1], with_auc=False)


def _ease_rankings(protocol_dir: str, regularization: float) -> Rankings:
    train = _table(protocol_dir, "train", R.RATINGS_FILE)
    items = sorted({r.item_id for r in train})
    column = {item: n for n, item in enumerate(items)}
    users = sorted({r.user_id for r in train})
    row = {user: n for n, user in enumerate(users)}
    rated = np.zeros((len(users), len(items)))
    rated[[row[r.user_id] for r in train], [column[r.item_id] for r in train]] = 1.0
    inverse = np.linalg.inv(rated.T @ rated + regularization * np.eye(len(items)))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    answers, relevant = few_answers_setup(protocol_dir)
    rankings = {}
    for user in relevant:
        answered = [column[i] for i in answers[user] if i in column]
        scores = weights[answered].sum(axis=0)
        scores[answered] = -np.inf
        rankings[user] = [items[n] for n in np.argsort(-scores, kind="stable")[:K]]
    return rankings


def ease_fold_in_tuned(protocol_dir: str, validation_dir: str) -> Dict[str, float]:
    """ease_fold_in at the λ best on the validation slice (its own held-out users)."""
    by_lambda = {lam: ease_fold_in(validation_dir, lam)[f"ndcg@{K}"] for lam in LAMBDAS}
    best = max(by_lambda, key=by_lambda.get)
    return {**ease_fold_in(protocol_dir, best), "lambda": best}
