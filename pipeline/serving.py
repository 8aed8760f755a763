"""Client of a pushed model's signatures, as the CLI and tests use it in process."""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from components import features as F
from data import raw_format as R

DEFAULT_K = 10  # every signature takes k as an input; this is the clients' default
Recommendations = List[List[Tuple[str, float]]]


class NoModelError(RuntimeError):
    """No model has been pushed to the serving folder yet."""


def latest_model_dir(serving_dir: str) -> str:
    """The highest numeric version under serving_dir, as TF Serving would pick."""
    versions = [v for v in (os.listdir(serving_dir) if os.path.isdir(serving_dir) else [])
                if v.isdigit()]
    if not versions:
        raise NoModelError(f"{serving_dir}: no pushed model yet; run `recsys run` first")
    return os.path.join(serving_dir, max(versions, key=int))


def _pairs(outputs) -> Recommendations:
    ids, scores = outputs["item_ids"].numpy(), outputs["scores"].numpy()
    return [[(i.decode(), float(s)) for i, s in zip(row_ids, row_scores)]
            for row_ids, row_scores in zip(ids, scores)]


class Recommender:
    """Calls `recommend`, `recommend_with_features` and `similar_items` of a SavedModel."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self._model = tf.saved_model.load(model_dir)

    def signature(self, name: str):
        return self._model.signatures[name]

    def recommend(self, user_ids: Sequence[str], k: int = DEFAULT_K,
                  user_features: Optional[Dict[str, Sequence]] = None) -> Recommendations:
        """Top-k per user; with user_features (age, gender, occupation, zip_code per user),
        scores from those demographics, which is how users the model never saw get served."""
        if user_features is None:
            return _pairs(self.signature("recommend")(
                user_id=tf.constant(list(user_ids), tf.string), k=tf.constant(k)))
        return _pairs(self.signature("recommend_with_features")(
            user_id=tf.constant(list(user_ids), tf.string),
            age=tf.constant(list(user_features[F.AGE]), tf.int64),
            gender=tf.constant(list(user_features[F.GENDER]), tf.string),
            occupation=tf.constant(list(user_features[F.OCCUPATION]), tf.string),
            zip_code=tf.constant(list(user_features[F.ZIP_CODE]), tf.string),
            k=tf.constant(k)))

    def similar_items(self, item_ids: Sequence[str], k: int = DEFAULT_K) -> Recommendations:
        return _pairs(self.signature("similar_items")(
            item_id=tf.constant(list(item_ids), tf.string), k=tf.constant(k)))

    def predict_ratings(self, examples: Sequence[bytes]) -> List[float]:
        outputs = self.signature("serving_default")(examples=tf.constant(list(examples)))
        return [float(r) for r in outputs["rating"].numpy()]


def item_titles(data_dir: str) -> Dict[str, str]:
    return {item.item_id: item.title for item in R.read_table(data_dir, R.ITEMS_FILE)}
