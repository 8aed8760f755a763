"""Client of a pushed model's signatures, as the CLI and tests use it in process."""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from components import features as F
from components.pusher.versions import numbered_versions
from data import raw_format as R

DEFAULT_K = 10  # every signature takes k as an input; this is the clients' default
Recommendations = List[List[Tuple[str, float]]]


class NoModelError(RuntimeError):
    """No model has been pushed to the serving folder yet."""


class BrokenModelError(NoModelError):
    """A version folder that is damaged: a file missing, truncated or unreadable."""


class RequestError(ValueError):
    """A request the signatures refuse (an item outside the catalog, k ≤ 0, an unknown
    genre); str() is the signature's own message, in one line."""


def _request_error(error: tf.errors.InvalidArgumentError) -> RequestError:
    lines = [line.strip() for line in error.message.splitlines()]
    line = next((line for line in lines if line.startswith("assertion failed:")
                 or " must " in line), lines[0])
    for noise in ("assertion failed: ", "[", "]"):
        line = line.replace(noise, "")
    return RequestError(line)


def latest_model_dir(serving_dir: str) -> str:
    """The highest numeric version under serving_dir, as TF Serving would pick."""
    versions = numbered_versions(serving_dir)
    if not versions:
        raise NoModelError(f"{serving_dir}: no pushed model yet; run `recsys run` first")
    return os.path.join(serving_dir, versions[-1])


def pairs(outputs, key: str = "item_ids") -> Recommendations:
    """Each row's (id, score) pairs; the empty ids that pad a row with fewer than k dropped."""
    ids, scores = outputs[key].numpy(), outputs["scores"].numpy()
    return [[(i.decode(), float(s)) for i, s in zip(row_ids, row_scores) if i]
            for row_ids, row_scores in zip(ids, scores)]


@dataclasses.dataclass(frozen=True)
class Constraints:
    """What the user asks of every recommended movie (knowledge-based recommendation)."""

    include_genres: Tuple[str, ...] = ()  # one of them at least (none: any)
    exclude_genres: Tuple[str, ...] = ()
    min_year: int = 0  # 0: no bound
    max_year: int = 0
    exclude_item_ids: Tuple[str, ...] = ()

    def inputs(self) -> Dict[str, tf.Tensor]:
        return {"include_genres": tf.constant(list(self.include_genres), tf.string),
                "exclude_genres": tf.constant(list(self.exclude_genres), tf.string),
                "min_year": tf.constant(self.min_year, tf.int64),
                "max_year": tf.constant(self.max_year, tf.int64),
                "exclude_item_ids": tf.constant(list(self.exclude_item_ids), tf.string)}

    def unmet(self, items: Sequence[R.Item]) -> Optional[str]:
        """Why no item of the catalog meets them all (None when some item does)."""
        rules = [
            (f"has one of the genres {', '.join(self.include_genres)}",
             lambda i: not self.include_genres or bool(set(i.genres) & set(self.include_genres))),
            (f"has none of the genres {', '.join(self.exclude_genres)}",
             lambda i: not set(i.genres) & set(self.exclude_genres)),
            (f"is from {self.min_year} or later",
             lambda i: not self.min_year or i.year >= self.min_year),
            (f"is from {self.max_year} or earlier",
             lambda i: not self.max_year or 0 < i.year <= self.max_year),
            ("is not excluded by id", lambda i: i.item_id not in self.exclude_item_ids),
        ]
        if any(all(rule(item) for _, rule in rules) for item in items):
            return None
        alone = [text for text, rule in rules if not any(rule(item) for item in items)]
        if alone:
            return f"no movie in the catalog {alone[0]}"
        return "no movie in the catalog meets all of: " + "; ".join(
            text for text, rule in rules if not all(rule(item) for item in items))


class Recommender:
    """Calls `recommend`, `recommend_with_features` and `similar_items` of a SavedModel."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        try:
            self._model = tf.saved_model.load(model_dir)
        except Exception as error:  # noqa: BLE001 - whatever the loader raises: a file is bad
            lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
            why = lines[0] if lines else type(error).__name__
            raise BrokenModelError(f"{model_dir} does not load as a SavedModel ({why})"
                                   ) from None

    def ids(self, kind: str) -> List[str]:
        """The model's known user ids (kind 'user') or served item ids ('item'), in index
        order."""
        table = {"user": self._model.user_ids, "item": self._model.item_ids}[kind]
        return [value.decode() for value in table.numpy()]

    def genre_names(self) -> List[str]:
        return [name.decode() for name in self._model.genre_names.numpy() if name]

    def signature_names(self) -> List[str]:
        return sorted(self._model.signatures)

    def signature_specs(self, name: str) -> Tuple[Dict[str, tf.TensorSpec], ...]:
        """(inputs, outputs) of a signature, by name."""
        function = self._model.signatures[name]
        return dict(function.structured_input_signature[1]), dict(function.structured_outputs)

    def signature(self, name: str):
        signature = self._model.signatures[name]

        def call(**inputs):
            try:
                return signature(**inputs)
            except tf.errors.InvalidArgumentError as error:
                raise _request_error(error) from None

        return call

    def recommend(self, user_ids: Sequence[str], k: int = DEFAULT_K,
                  user_features: Optional[Dict[str, Sequence]] = None) -> Recommendations:
        """Top-k per user; with user_features (age, gender, occupation, zip_code per user),
        scores from those demographics, which is how users the model never saw get served."""
        if user_features is None:
            return pairs(self.signature("recommend")(
                user_id=tf.constant(list(user_ids), tf.string), k=tf.constant(k)))
        return pairs(self.signature("recommend_with_features")(
            user_id=tf.constant(list(user_ids), tf.string),
            age=tf.constant(list(user_features[F.AGE]), tf.int64),
            gender=tf.constant(list(user_features[F.GENDER]), tf.string),
            occupation=tf.constant(list(user_features[F.OCCUPATION]), tf.string),
            zip_code=tf.constant(list(user_features[F.ZIP_CODE]), tf.string),
            k=tf.constant(k)))

    def recommend_constrained(self, user_ids: Sequence[str], constraints: Constraints,
                              k: int = DEFAULT_K) -> Recommendations:
        return pairs(self.signature("recommend_constrained")(
            user_id=tf.constant(list(user_ids), tf.string), k=tf.constant(k),
            **constraints.inputs()))

    def recommend_from_answers(self, rated: Dict[str, float], genres: Sequence[str] = (),
                               constraints: Constraints = Constraints(),
                               k: int = DEFAULT_K) -> List[Tuple[str, float]]:
        """Top-k for a new user who rated the movies of `rated` (id → rating) and likes
        `genres`."""
        return pairs(self.signature("recommend_from_answers")(
            item_ids=tf.constant(list(rated), tf.string),
            ratings=tf.constant(list(rated.values()), tf.float32),
            genres=tf.constant(list(genres), tf.string), k=tf.constant(k),
            **constraints.inputs()))[0]

    def similar_items(self, item_ids: Sequence[str], k: int = DEFAULT_K) -> Recommendations:
        return pairs(self.signature("similar_items")(
            item_id=tf.constant(list(item_ids), tf.string), k=tf.constant(k)))

    def users_for_item(self, item_ids: Sequence[str], k: int = DEFAULT_K) -> Recommendations:
        """The k users each item suits best (its audience), as (user id, score)."""
        return pairs(self.signature("users_for_item")(
            item_id=tf.constant(list(item_ids), tf.string), k=tf.constant(k)), "user_ids")

    def predict_ratings(self, examples: Sequence[bytes]) -> List[float]:
        outputs = self.signature("serving_default")(examples=tf.constant(list(examples)))
        return [float(r) for r in outputs["rating"].numpy()]


def item_titles(data_dir: str) -> Dict[str, str]:
    return {item.item_id: item.title for item in R.read_table(data_dir, R.ITEMS_FILE)}
