"""What a model carries forward from the model in service: its ratings, in the new ids."""

import types

import numpy as np
import tensorflow as tf

from components import features as F
from components.serving.exclusions import Exclusions, carried_exclusions
from components.training.catalog import Catalog


def _catalog(num_users, num_items, rated):
    """A catalog whose training ratings are rated: {user index: [item indices]}."""
    items = [rated.get(user, []) for user in range(num_users + 1)]
    splits = np.concatenate([[0], np.cumsum([len(row) for row in items])]).astype(np.int64)
    flat = np.array([i for row in items for i in row], np.int64)
    return Catalog(user_features={}, item_year_buckets=np.zeros(num_items, np.int64),
                   item_genres=[], item_title_tokens=[], seen_splits=splits, seen_items=flat,
                   seen_ratings=np.ones(len(flat), np.float32),
                   popularity=np.zeros(num_items, np.float32), mean_rating=1.0,
                   num_ratings=len(flat))


def _service(tmp_path, users, items, seen, excluded=None):
    """A model in service as the Trainer loads it: its tables and its user vocabulary."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / F.USER_VOCAB).write_bytes(b"".join(u + b"\n" for u in users))
    catalog = _catalog(len(users), len(items), seen)
    module = types.SimpleNamespace(seen_splits=tf.constant(catalog.seen_splits),
                                   seen_items=tf.constant(catalog.seen_items),
                                   item_ids=tf.constant(items))
    if excluded is not None:
        carried = _catalog(len(users), len(items), excluded)
        module.excluded_splits = tf.constant(carried.seen_splits)
        module.excluded_items = tf.constant(carried.seen_items)
    return module, str(tmp_path)


def _rows(exclusions):
    return [sorted(exclusions.items[start:end]) for start, end in
            zip(exclusions.splits[:-1], exclusions.splits[1:])]


def test_the_services_ratings_and_exclusions_are_carried_in_the_new_ids_less_those_trained(
        tmp_path):
    # a rated x, y; b rated z; c rated x; a's z came from a span before them.
    module, folder = _service(tmp_path, [b"a", b"b", b"c"], [b"x", b"y", b"z"],
                              {0: [0, 1], 1: [2], 2: [0]}, excluded={0: [2]})
    # The new run: users b, a, d (c left the window), items z, x, w (y left); a-x trained on.
    new_users, new_items = [b"b", b"a", b"d", b"__oov__"], [b"z", b"x", b"w"]
    catalog = _catalog(3, 3, {1: [1]})
    exclusions = carried_exclusions(module, folder, new_users, new_items, catalog)
    assert _rows(exclusions) == [[0], [0], [], []]  # b: z; a: z (x trained, y gone); d: none
    assert len(exclusions.splits) == catalog.num_users + 2 == len(catalog.seen_splits)
    # y no longer rated in the window but still in items.csv: served after the rated items,
    # from its content, and still excluded for a.
    exclusions = carried_exclusions(module, folder, new_users, new_items + [b"y"], catalog)
    assert _rows(exclusions) == [[0], [0, 3], [], []]


def test_a_model_exported_before_exclusions_were_carried_gives_its_ratings(tmp_path):
    module, folder = _service(tmp_path, [b"a", b"b"], [b"x", b"y"], {0: [0, 1], 1: [1]})
    exclusions = carried_exclusions(module, folder, [b"a", b"b"], [b"x", b"y"],
                                    _catalog(2, 2, {}))
    assert _rows(exclusions) == [[0, 1], [1], []]


def test_no_exclusions_has_an_empty_row_for_every_user_and_the_unknown_one():
    none = Exclusions.none(4)
    assert none.splits.tolist() == [0] * 6 and len(none.items) == 0
