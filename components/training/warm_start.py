"""Warm start: the hybrid's towers and item autoencoder begin where the previous model left
off, mapped by id.

Vocabularies are rebuilt on every run (ordered by frequency, and growing as users and items
arrive), so a row index means a different id from one run to the next: every id-indexed
weight is copied row by row through the ids, and new ids keep their fresh initial rows.
Weights whose shape does not depend on a vocabulary (projections, global bias, rank scale) are
copied as they are. The content embeddings (age, occupation, genres, ...) and the fixed
popularity prior start fresh: they are small, and their vocabularies are not exported by name.
"""

import dataclasses
import os
import re
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from components import features as F

# Variable name prefix → the vocabulary its rows follow (rows past the known ids are OOV).
ROWS_BY_ID = {
    "user_tower/user_id/": F.USER_VOCAB,
    "user_tower/history/": F.ITEM_VOCAB,
    "item_tower/item_id/": F.ITEM_VOCAB,
    "rank_bias": F.ITEM_VOCAB,
    # The item autoencoder (components/models/item_autoencoder.py): one row per user in and out.
    "item_autoencoder/encoder": F.USER_VOCAB,
    "item_autoencoder/decoder": F.USER_VOCAB,
    "item_autoencoder/decoder_bias": F.USER_VOCAB,
}
COPIED = ("user_tower/demographics/", "item_tower/content/", "global_bias", "rank_scale",
          "item_autoencoder/encoder_bias")
_MODEL_SCOPE = re.compile(r"^hybrid_model(_\d+)?/")


@dataclasses.dataclass(frozen=True)
class WarmStartReport:
    copied: List[str]  # variables copied whole
    mapped: Dict[str, int]  # variable → rows carried over by id
    new_ids: Dict[str, int]  # vocabulary → ids without a previous row

    def carried(self, names: Sequence[str]) -> bool:
        """Whether every one of these id-indexed variables had its rows carried over (what
        earns a model the shorter warm schedule)."""
        return all(name in self.mapped for name in names)


def _name(variable) -> str:
    return variable.name.split(":")[0]


def _unscoped(name: str) -> str:
    """The name without the model's own scope: a model built by calling it names its variables
    hybrid_model/user_tower/... (hybrid_model_1/... for the process's second model), one built
    in fit's first trace user_tower/...; exports hold either."""
    return _MODEL_SCOPE.sub("", name)


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or (prefix.endswith("/") and name.startswith(prefix))


def warm_start(variables: Sequence[tf.Variable], previous: Dict[str, np.ndarray],
               previous_ids: Dict[str, Sequence[bytes]], ids: Dict[str, Sequence[bytes]]
               ) -> WarmStartReport:
    """Assigns `previous` weights (by variable name) to `variables`, mapping the rows of
    id-indexed ones from previous_ids to ids (per vocabulary name)."""
    previous = {_unscoped(name): values for name, values in previous.items()}
    copied, mapped = [], {}
    for variable in variables:
        name = _unscoped(_name(variable))
        if name not in previous:
            continue
        old = previous[name]
        vocab = next((v for p, v in ROWS_BY_ID.items() if _matches(name, p)), None)
        if vocab is not None:
            old_index = {key: row for row, key in enumerate(previous_ids[vocab])}
            pairs = [(row, old_index[key]) for row, key in enumerate(ids[vocab])
                     if key in old_index and old_index[key] < len(old)]
            pairs = [(new, old_row) for new, old_row in pairs if new < variable.shape[0]]
            if pairs and old.shape[1:] == tuple(variable.shape[1:]):
                values = variable.numpy()
                new_rows, old_rows = map(list, zip(*pairs))
                values[new_rows] = old[old_rows]
                variable.assign(values)
                mapped[name] = len(pairs)
        elif any(_matches(name, p) for p in COPIED) and old.shape == tuple(variable.shape):
            variable.assign(old)
            copied.append(name)
    new_ids = {vocab: len(set(keys) - set(previous_ids.get(vocab, ())))
               for vocab, keys in ids.items()}
    return WarmStartReport(copied=copied, mapped=mapped, new_ids=new_ids)


def vocabulary(model_dir: str, name: str) -> List[bytes]:
    with tf.io.gfile.GFile(os.path.join(model_dir, "assets", name), "rb") as handle:
        return [line.rstrip(b"\n") for line in handle]


def load_previous(module: tf.Module, model_dir: str):
    """(weights by name, ids by vocabulary) of an exported hybrid (module: model_dir loaded);
    None for another kind (and for a hybrid exported before its variables were saved as
    `hybrid_variables`)."""
    variables = list(getattr(module, "hybrid_variables", []))
    if not variables:
        return None
    return weights_of(variables), {vocab: vocabulary(model_dir, vocab)
                                   for vocab in (F.USER_VOCAB, F.ITEM_VOCAB)}


def weights_of(variables: Sequence[tf.Variable]) -> Dict[str, np.ndarray]:
    """Variables' values by name, as warm_start takes them."""
    return {_name(v): v.numpy() for v in variables}
