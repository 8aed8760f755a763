"""Deterministic synthetic ratings in the raw format, with MovieLens-like structure to learn.

Tests and benchmarks need data that is free to share and scale (MovieLens is neither), and that
a model provably learns from. Ratings come from a known model: user and item biases
(popular items rate higher), 8-dim latent user/item factors, and genre tastes shifted by
occupation, age group and gender. Users have skewed activity (each at least MIN_USER_RATINGS
distinct items) and, like real users, mostly rate what they chose to watch: user u draws items
without replacement with probability proportional to popularity_j * exp(SELECTION_BETA * z_uj),
z being the taste score (factors + genre tastes) that also drives the ratings, standardized over
all pairs. So which items a user rated is itself learnable, and personalized rankers beat the
popularity ranking as on MovieLens. Ratings are cut from the scores at quantiles that reproduce
MovieLens-100K's rating shares (mean about 3.5), and rows are written in time order over about
seven months. Same arguments, same bytes.

Usage: python -m data.synthetic DEST [--users N] [--items N] [--ratings N] [--seed N]
"""

import argparse
import os
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from components.features import AGE_BOUNDARIES
from data.movielens import GENRES
from data.raw_format import (
    GENRE_SEPARATOR,
    ITEMS_COLUMNS,
    ITEMS_FILE,
    RATINGS_COLUMNS,
    RATINGS_FILE,
    USERS_COLUMNS,
    USERS_FILE,
    write_csv,
)

OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "entertainment",
               "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
               "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
               "writer")
# Relative frequencies as in MovieLens-100K, so vocabularies and slices look familiar.
OCCUPATION_WEIGHTS = (79, 28, 7, 95, 67, 18, 32, 16, 7, 12, 51, 26, 9, 105, 66, 14, 12, 31, 196,
                      27, 45)
GENRE_WEIGHTS = (2, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101, 251, 71,
                 27)
RATING_SHARES = (0.061, 0.114, 0.271, 0.342, 0.212)  # of 1..5 stars

# Occupation log-odds shifts per age group (AGE_BOUNDARIES): students young, retirees old.
AGE_GROUPS = len(AGE_BOUNDARIES) + 1
STUDENT_SHIFT = (1.5, 1.0, -0.5, -2.0, -3.0, -4.0, -4.0)
RETIRED_SHIFT = (-6.0, -6.0, -6.0, -4.0, -2.0, 1.0, 2.5)

MIN_USER_RATINGS = 5
MAX_USER_SHARE = 0.5  # of all items, for the most active users
FACTOR_DIM = 8
# Item exposure ~ (rank + POPULARITY_OFFSET * num_items) ** -POPULARITY_EXPONENT (Zipf-Mandelbrot).
# Choosing by taste spreads ratings over more items, so the exposure is steeper than the ratings'
# skew: at MovieLens-100K's size the top 10% of items get about 40% of ratings (43% there).
POPULARITY_EXPONENT = 1.7
POPULARITY_OFFSET = 0.02
# Weight of the standardized taste score in item choice. At MovieLens-100K's size and split
# (stratified by item, 75/25) popularity's NDCG@10 is then about 0.24, item-item kNN's about 0.40
# and the true choice logits' 0.73; on MovieLens-100K popularity gets 0.25, good models 0.40-0.47.
SELECTION_BETA = 2.5
SELECTION_CHUNK = 1 << 22  # choice logits per chunk of users: memory stays flat at any size
START_TIME = 874724710  # MovieLens-100K's first timestamp
PERIOD = 215 * 86400  # about seven months
MEAN_USER_SPAN = 20 * 86400


def _user_counts(rng: np.random.Generator, num_users: int, num_ratings: int,
                 cap: int) -> np.ndarray:
    """Ratings per user: MIN_USER_RATINGS each plus a lognormal share of the rest, at most cap."""
    weights = rng.lognormal(0.0, 1.0, num_users)
    counts = np.full(num_users, MIN_USER_RATINGS, dtype=np.int64)
    left = num_ratings - counts.sum()
    while left:
        open_weights = np.where(counts < cap, weights, 0.0)
        counts = np.minimum(counts + rng.multinomial(left, open_weights / open_weights.sum()),
                            cap)
        left = num_ratings - counts.sum()
    return counts


def _pair_moments(left: np.ndarray, right: np.ndarray) -> Tuple[float, float]:
    """Mean and standard deviation of left[u] . right[j] over all (u, j) pairs, exactly.

    Over all pairs, E[l . r] = E[l] . E[r] and E[(l . r)^2] = sum_ab E[l_a l_b] E[r_a r_b], so
    two small Gram matrices suffice: no [num_users, num_items] matrix is formed.
    """
    mean = float(left.mean(axis=0) @ right.mean(axis=0))
    second = float(np.sum((left.T @ left / len(left)) * (right.T @ right / len(right))))
    return mean, float(np.sqrt(max(second - mean ** 2, 0.0))) or 1.0


def _choose_items(rng: np.random.Generator, counts: np.ndarray, log_popularity: np.ndarray,
                  user_vectors: np.ndarray, item_vectors: np.ndarray,
                  beta: float) -> Tuple[np.ndarray, np.ndarray]:
    """Gives user u counts[u] distinct items drawn without replacement with probabilities
    proportional to exp(log_popularity[j] + beta * z[u, j]), z being user_vectors[u] .
    item_vectors[j] standardized over all pairs. Returns (users, items) sorted by user, item.

    Gumbel-top-k: the counts[u] largest of logit + Gumbel noise are such a draw (successive
    sampling without replacement). Users go in chunks of about SELECTION_CHUNK logits, most
    active first, so a chunk's users need similar counts and one partial sort serves them all.
    """
    num_users, num_items = len(counts), len(log_popularity)
    mean, std = _pair_moments(user_vectors, item_vectors)
    item_weights = (beta / std) * item_vectors.T
    item_offset = log_popularity - (beta / std) * mean
    users = np.repeat(np.arange(num_users, dtype=np.int64), counts)
    items = np.empty(len(users), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    order = np.argsort(-counts, kind="stable")
    rows = max(1, SELECTION_CHUNK // num_items)
    for first in range(0, num_users, rows):
        chunk = order[first:first + rows]
        need = counts[chunk]
        most = int(need.max())
        # log(Exp(1)) is minus a Gumbel variate: the smallest keys are the largest perturbed
        # logits.
        keys = np.log(rng.standard_exponential((len(chunk), num_items)))
        keys -= user_vectors[chunk] @ item_weights
        keys -= item_offset
        best = np.argpartition(keys, most - 1, axis=1)[:, :most]
        ranked = np.take_along_axis(
            best, np.argsort(np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
        wanted = np.arange(most) < need[:, None]
        chosen = np.sort(np.where(wanted, ranked, num_items), axis=1)[wanted]
        within = np.arange(len(chosen)) - np.repeat(np.cumsum(need) - need, need)
        items[np.repeat(starts[chunk], need) + within] = chosen
    return users, items


def _pair_dot(left: np.ndarray, right: np.ndarray, rows: np.ndarray, cols: np.ndarray,
              chunk: int = 1 << 18) -> np.ndarray:
    """left[rows] . right[cols] row by row, in chunks so memory stays flat at any size."""
    out = np.empty(len(rows))
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        out[part] = np.einsum("ij,ij->i", left[rows[part]], right[cols[part]])
    return out


def _rows(*columns: np.ndarray, chunk: int = 1 << 16) -> Iterator[tuple]:
    """Rows for csv, converted from numpy a chunk at a time."""
    for start in range(0, len(columns[0]), chunk):
        yield from zip(*(c[start:start + chunk].tolist() for c in columns))


def generate(dest_dir: str, num_users: int = 300, num_items: int = 400,
             num_ratings: int = 20000, seed: int = 0) -> str:
    """Writes ratings.csv, users.csv and items.csv into dest_dir and returns dest_dir."""
    cap = max(MIN_USER_RATINGS, int(num_items * MAX_USER_SHARE))
    if num_items < MIN_USER_RATINGS:
        raise ValueError(f"need at least {MIN_USER_RATINGS} items, got {num_items}")
    if not MIN_USER_RATINGS * num_users <= num_ratings <= cap * num_users:
        raise ValueError(f"{num_users} users need between {MIN_USER_RATINGS * num_users} and "
                         f"{cap * num_users} ratings over {num_items} items, got {num_ratings}")
    rng = np.random.default_rng(seed)
    num_genres = len(GENRES)

    # Users: age, gender and an occupation that depends on age.
    age = np.clip(np.rint(7 + rng.gamma(3.5, 7.7, num_users)), 7, 73).astype(np.int64)
    age_group = np.digitize(age, AGE_BOUNDARIES)
    male = rng.random(num_users) < 0.71
    occupation_logits = np.tile(np.log(OCCUPATION_WEIGHTS), (AGE_GROUPS, 1))
    occupation_logits[:, OCCUPATIONS.index("student")] += STUDENT_SHIFT
    occupation_logits[:, OCCUPATIONS.index("retired")] += RETIRED_SHIFT
    occupation = np.argmax(occupation_logits[age_group]
                           + rng.gumbel(size=(num_users, len(OCCUPATIONS))), axis=1)
    zip_code = np.char.zfill(rng.integers(0, 100000, num_users).astype(str), 5)

    # Items: 1 to 6 genres drawn by MovieLens' genre frequencies, release years skewed recent.
    genre_count = 1 + np.minimum(rng.poisson(0.7, num_items), 5)
    genre_keys = np.log(GENRE_WEIGHTS) + rng.gumbel(size=(num_items, num_genres))
    multi_hot = np.zeros((num_items, num_genres), dtype=bool)
    np.put_along_axis(multi_hot, np.argsort(-genre_keys, axis=1),
                      np.arange(num_genres) < genre_count[:, None], axis=1)
    year = np.clip(1998 - np.floor(rng.exponential(9.0, num_items)), 1920, 1998).astype(np.int64)
    rank = np.arange(num_items) + POPULARITY_OFFSET * num_items
    popularity = rng.permutation(rank ** -POPULARITY_EXPONENT)
    popularity /= popularity.sum()

    # Taste: latent factors, plus genre affinities shifted by occupation, age group and gender.
    user_factors = rng.normal(0.0, 0.45, (num_users, FACTOR_DIM))
    item_factors = rng.normal(0.0, 0.45, (num_items, FACTOR_DIM))
    affinity = (rng.normal(0.0, 0.35, (len(OCCUPATIONS), num_genres))[occupation]
                + rng.normal(0.0, 0.35, (AGE_GROUPS, num_genres))[age_group]
                + rng.normal(0.0, 0.25, (2, num_genres))[male.astype(np.int64)]
                + rng.normal(0.0, 0.4, (num_users, num_genres)))
    user_bias = rng.normal(0.0, 0.35, num_users)
    log_popularity = np.log(popularity)
    item_bias = (0.3 * (log_popularity - log_popularity.mean()) / log_popularity.std()
                 + rng.normal(0.0, 0.4, num_items))

    # Who rated what, and when: each user rates within a short span after joining.
    user_vectors = np.hstack([user_factors, affinity])
    item_vectors = np.hstack([item_factors, multi_hot / genre_count[:, None]])
    users, items = _choose_items(rng, _user_counts(rng, num_users, num_ratings, cap),
                                 log_popularity, user_vectors, item_vectors, SELECTION_BETA)
    joined = rng.uniform(0.0, PERIOD, num_users)
    span = np.minimum(rng.exponential(MEAN_USER_SPAN, num_users), PERIOD - joined)
    timestamp = START_TIME + np.floor(joined[users] + span[users] * rng.random(num_ratings))
    timestamp = timestamp.astype(np.int64)

    score = (user_bias[users] + item_bias[items]
             + _pair_dot(user_vectors, item_vectors, users, items)
             + rng.normal(0.0, 0.8, num_ratings))
    cuts = np.quantile(score, np.cumsum(RATING_SHARES)[:-1])
    rating = 1 + np.searchsorted(cuts, score)

    order = np.argsort(timestamp, kind="stable")
    genre_names = np.array(GENRES)
    genres = np.array([GENRE_SEPARATOR.join(genre_names[row]) for row in multi_hot])
    user_ids = np.arange(1, num_users + 1)
    item_ids = np.arange(1, num_items + 1)
    os.makedirs(dest_dir, exist_ok=True)
    write_csv(os.path.join(dest_dir, RATINGS_FILE), RATINGS_COLUMNS,
              _rows(users[order] + 1, items[order] + 1, rating[order], timestamp[order]))
    write_csv(os.path.join(dest_dir, USERS_FILE), USERS_COLUMNS,
              _rows(user_ids, age, np.where(male, "M", "F"),
                    np.array(OCCUPATIONS)[occupation], zip_code))
    write_csv(os.path.join(dest_dir, ITEMS_FILE), ITEMS_COLUMNS,
              _rows(item_ids, np.char.add("Synthetic Movie ", item_ids.astype(str)), year,
                    genres))
    return dest_dir


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dest", help="folder to write ratings.csv, users.csv and items.csv into")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--ratings", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(generate(args.dest, args.users, args.items, args.ratings, args.seed))


if __name__ == "__main__":
    main()
