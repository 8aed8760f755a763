"""The release gate's ranking half: the candidate must rank the catalog well enough, and no
worse than the model in service, before Pusher may push it.

TFMA gates the rating metric (RMSE) but computes no NDCG over a ranked catalog, so this
component scores the candidate's and the baseline's `recommend` on the eval split (seen items
excluded) and writes the blessing Pusher and the baseline resolver read: blessed only if the
Evaluator blessed the candidate and both ranking thresholds hold.
"""

import json
import os

import tensorflow as tf
from tfx.components.evaluator import constants
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Examples, Model, ModelBlessing
from tfx.utils import io_utils, path_utils

from components import features as F
from components.evaluation.ranking_eval import (
    held_out,
    ranking_by_slice,
    ranking_of,
    recommend_all,
    signature_recommend,
)
from components.evaluation.top_k_profile import example_lists, popular_items, top_k_profile

METRICS_FILE = "ranking_metrics.json"
# Every component came from cache (no new data, code or settings): pushing would only copy the
# model in service.
SAME_MODEL = "the candidate is the model in service (nothing new to train on)"


def ranking_failures(candidate, baseline, metric: str, min_value: float, max_drop: float):
    """Which ranking threshold the candidate missed, and by how much."""
    failures = []
    if candidate[metric] < min_value:
        failures.append(f"{metric} {candidate[metric]:.4f} is below the absolute threshold "
                        f"{min_value:.4f} by {min_value - candidate[metric]:.4f}")
    if baseline is not None and candidate[metric] < baseline[metric] - max_drop:
        failures.append(f"{metric} {candidate[metric]:.4f} regresses past the blessed model's "
                        f"{baseline[metric]:.4f} - {max_drop} by "
                        f"{baseline[metric] - max_drop - candidate[metric]:.4f}")
    return failures


@component
def RankingGate(  # noqa: N802 - TFX component names are classes
        examples: InputArtifact[Examples],
        model: InputArtifact[Model],
        rating_blessing: InputArtifact[ModelBlessing],
        release_blessing: OutputArtifact[ModelBlessing],
        baseline_model: InputArtifact[Model] = None,
        metric: Parameter[str] = "ndcg@10",
        k: Parameter[int] = 10,
        min_value: Parameter[float] = 0.0,
        max_drop: Parameter[float] = 0.0,
) -> None:
    held = held_out(examples.uri, "eval", F.SLICES)
    users = sorted(held.relevant)

    def score(artifact):
        """The model's top-k metrics overall and by slice, and what its lists look like."""
        saved = tf.saved_model.load(path_utils.eval_model_path(artifact.uri))
        recommend = signature_recommend(saved)
        recommended = dict(zip(users, recommend_all(recommend, users, k)))
        catalog_size = int(saved.item_ids.shape[0])
        return (ranking_of([recommended[u] for u in users], [held.relevant[u] for u in users], k),
                {"slices": ranking_by_slice(recommended, held, k),
                 "top_k": top_k_profile(recommended, catalog_size,
                                        popular_items(recommend, catalog_size))},
                recommended)

    candidate, candidate_profile, candidate_lists = score(model)
    baseline, baseline_profile = (score(baseline_model)[:2] if baseline_model is not None
                                  else (None, None))
    failures = ranking_failures(candidate, baseline, metric, min_value, max_drop)
    if baseline_model is not None and baseline_model.id == model.id:
        failures = [SAME_MODEL]
    if not rating_blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY):
        failures.insert(0, "the Evaluator did not bless the rating metrics")
    blessed = not failures
    # The output is named apart from the Evaluator's "blessing": Airflow's launcher names
    # artifacts output_key:run_id, and ML Metadata wants names unique per type.
    verdict = os.path.join(release_blessing.uri,
                           constants.BLESSED_FILE_NAME if blessed else
                           constants.NOT_BLESSED_FILE_NAME)
    io_utils.write_string_file(os.path.join(release_blessing.uri, METRICS_FILE), json.dumps(
        {"candidate": candidate, "baseline": baseline, "failures": failures,
         "candidate_profile": {**candidate_profile,
                               "examples": example_lists(candidate_lists, held)},
         "baseline_profile": baseline_profile}, indent=2))
    io_utils.write_string_file(verdict, "")
    for key, value in ((constants.ARTIFACT_PROPERTY_BLESSED_KEY, int(blessed)),
                       (constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)):
        release_blessing.set_int_custom_property(key, value)
    release_blessing.set_string_custom_property(
        constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
    if baseline_model is not None:
        release_blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline_model.id)
