"""Ratings a model excludes from recommendations though it did not train on them: spans that
have left the training window. Each model carries them forward from the model in service, so
a span leaving the window does not make its movies recommendable again."""

import dataclasses
from typing import Iterator, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components import features as F
from components.training.catalog import Catalog
from components.training.warm_start import vocabulary


@dataclasses.dataclass(frozen=True)
class Exclusions:
    """CSR rows over users, as Catalog's seen items (+1 empty row for unknown users)."""

    splits: np.ndarray
    items: np.ndarray

    @classmethod
    def none(cls, num_users: int) -> "Exclusions":
        return cls(np.zeros(num_users + 2, np.int64), np.zeros(0, np.int64))


def _rated_pairs(service: tf.Module) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(user index, item index) of every rating the exported model excludes, in its ids."""
    tables = [(service.seen_splits, service.seen_items)]
    if hasattr(service, "excluded_splits"):  # exported before exclusions were carried: none
        tables.append((service.excluded_splits, service.excluded_items))
    for splits, items in tables:
        splits = splits.numpy()
        yield np.repeat(np.arange(len(splits) - 1), np.diff(splits)), items.numpy()


def _index_map(old_ids: Sequence[bytes], new_ids: Sequence[bytes]) -> np.ndarray:
    """new index of each old id (-1 where the new vocabulary lacks it)."""
    new_index = {key: row for row, key in enumerate(new_ids)}
    return np.array([new_index.get(key, -1) for key in old_ids] + [-1], np.int64)


def carried_exclusions(service: tf.Module, service_dir: str, user_ids: Sequence[bytes],
                       item_ids: Sequence[bytes], catalog: Catalog) -> Exclusions:
    """What the model in service excludes (its training ratings and what it carried), in this
    run's ids, less the ratings this run trains on. item_ids: the items this run serves, in
    its index order (rated, then those no rating in the window names: a movie rated only in a
    span that left the window is served again from its content, and stays excluded). A user
    this run's vocabulary lacks is unknown to the new model, and its pairs are dropped."""
    user_map = _index_map(vocabulary(service_dir, F.USER_VOCAB), user_ids[:catalog.num_users])
    item_map = _index_map(list(service.item_ids.numpy()), item_ids)
    served = len(item_ids)
    users, items = [], []
    for old_users, old_items in _rated_pairs(service):
        new_users = user_map[np.minimum(old_users, len(user_map) - 1)]
        new_items = item_map[np.minimum(old_items, len(item_map) - 1)]
        kept = (new_users >= 0) & (new_items >= 0)
        users.append(new_users[kept])
        items.append(new_items[kept])
    keys = np.unique(np.concatenate(users) * served + np.concatenate(items))
    trained_users, trained_items, _ = catalog.pairs()
    keys = keys[~np.isin(keys, trained_users * served + trained_items)]
    counts = np.bincount(keys // served, minlength=catalog.num_users + 1)
    return Exclusions(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                      (keys % served).astype(np.int64))
