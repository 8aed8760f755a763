"""The floor every model must clear: rank by how often items were rated, rate by item mean."""

import numpy as np

from components.models.tables import TableModel, regularized_biases
from components.training.catalog import Catalog


def fit_popularity(catalog: Catalog) -> TableModel:
    mean, _, item_biases = regularized_biases(catalog)
    # One all-zero dimension: no personalization (oneDNN rejects zero-width matrix products).
    return TableModel(
        global_bias=mean,
        user_vectors=np.zeros((catalog.num_users, 1), np.float32),
        user_biases=np.zeros(catalog.num_users, np.float32),
        item_vectors=np.zeros((catalog.num_items, 1), np.float32), item_biases=item_biases,
        item_rank_biases=np.log(catalog.popularity + 1e-9).astype(np.float32))
