"""The article's content-based model: genre vectors for items, a taste vector for each user.

A user's vector is the sum of the k-hot genre vectors of the movies they rated, weighted by
their rating and normalized to unit length; unseen movies are ranked by its dot product with
their genre vector (or cosine, with `cosine=True`). Ratings are the bias baseline plus that
score, scaled by a least-squares fit on the training ratings.
"""

from typing import Sequence

import numpy as np

from components.models.tables import TableModel, regularized_biases
from components.training.catalog import Catalog

MIN_SCALE = 1e-3  # keeps the ranking's direction even if the score does not help ratings


def genre_matrix(item_genres: Sequence[np.ndarray], num_genres: int, cosine: bool) -> np.ndarray:
    """[items, num_genres] k-hot genres of each item's genre indices; rows unit-length when
    cosine."""
    matrix = np.zeros((len(item_genres), num_genres), np.float32)
    for item, genres in enumerate(item_genres):
        matrix[item, genres] = 1.0
    if cosine:
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
    return matrix


def fit_content(catalog: Catalog, num_genres: int, cosine: bool = False) -> TableModel:
    users, items, ratings = catalog.pairs()
    genres = genre_matrix(catalog.item_genres, num_genres, cosine)
    taste = np.zeros((catalog.num_users + 1, num_genres), np.float32)
    np.add.at(taste, users, ratings[:, None] * genres[items])
    taste = taste[:catalog.num_users]
    taste /= np.maximum(np.linalg.norm(taste, axis=1, keepdims=True), 1e-9)
    mean, user_biases, item_biases = regularized_biases(catalog)
    score = np.sum(taste[users] * genres[items], axis=1)
    residual = ratings - mean - user_biases[users] - item_biases[items]
    scale = max(float(score @ residual / max(score @ score, 1e-9)), MIN_SCALE)
    return TableModel(
        global_bias=mean, user_vectors=(scale * taste).astype(np.float32),
        user_biases=user_biases, item_vectors=genres, item_biases=item_biases,
        item_rank_biases=np.zeros(catalog.num_items, np.float32))
