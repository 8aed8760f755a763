"""Trainer entry point: fit the configured model on transformed examples, export the contract.

Every model kind (`hybrid`, `wals`, `content`, `popularity`) reads the same transformed
examples and exports the same signatures, so the Evaluator and the CLI treat them alike.
"""

import concurrent.futures
import ctypes
import dataclasses
import functools
import gc
import json
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import scipy.sparse
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from components import features as F
from components.example_gen.item_catalog import examples_uri_of, read_item_catalog
from components.models.content import fit_content, genre_matrix
from components.models.hybrid import (
    HybridModel,
    ModelConfig,
    SoftmaxRetrieval,
    Vocabularies,
    WeightedSquaresRetrieval,
)
from components.models.item_autoencoder import (
    AutoencoderConfig,
    FittedAutoencoder,
    fit_item_autoencoder,
)
from components.models.item_item import ItemNeighbours, fit_ease, strongest_neighbours
from components.models.popularity import fit_popularity
from components.models.tables import TableModel
from components.models.wals import WalsConfig, fit_wals
from components.serving.exclusions import Exclusions, carried_exclusions
from components.serving.export import RecommenderModule, TransformGraph, export
from components.serving.served_items import ServedItems
from components.training.adam import create_slots, fused_adam
from components.training.catalog import Catalog, build_catalog
from components.training.cold_items import (
    CALIBRATION_USERS,
    ColdItems,
    calibration,
    cold_items,
    content_matrix,
    content_prior,
    genre_lists,
    with_cold_items,
)
from components.training.in_memory import InMemoryExamples
from components.training.local_workers import train_on_local_workers
from components.training.warm_start import WarmStartReport, load_previous, warm_start, weights_of

READ_BATCH = 65536
WARM_START_FILE = "warm_start.json"  # in the ModelRun artifact: what a warm start carried over
TRAINING_FILE = "training.json"  # in the ModelRun artifact: the towers' examples and epoch times
MODELS = ("hybrid", "wals", "content", "popularity")
RETRIEVALS = ("weighted_squares", "softmax")
DISTRIBUTIONS = ("", "mirrored", "multi_worker_mirrored")
# A warm start of the towers: both id embeddings carried over from the model in service.
WARM_TOWERS = ("user_tower/user_id/vectors/embeddings", "item_tower/item_id/vectors/embeddings")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters, passed by the pipeline as the Trainer's custom_config."""

    model: str = "hybrid"
    seed: int = 42
    # hybrid. Chosen on the validation slices of `make bench-quality ARGS=--validation`
    # (carved from each protocol's training part, never its test part): RMSE on u1's,
    # NDCG@10 on the stratified and cold-start ones.
    epochs: int = 8
    # A run's budget of examples seen: data too large for `epochs` within it trains fewer
    # (at least one), each epoch being that many more steps; warm epochs too. It does not bind
    # on MovieLens-100K or -1M (8 epochs of 0.8M training examples are 6.4M); at -10M's shape
    # (8M training examples) it leaves 2 of 8 epochs: past the budget the Trainer's time grows
    # with the data only until one epoch is left (docs/benchmarks.md, "Scale"). The same for
    # the item autoencoder, whose step updates every user's rows whatever the data: 50 epochs
    # of ratings are 40M at -1M's shape, and -10M's trains 6.
    example_budget: int = 20_000_000
    autoencoder_example_budget: int = 50_000_000
    # 2048: the validation slices' scores of 1024 (RMSE within 0.0003, both NDCGs higher) in
    # fewer, larger steps; 4096 lost 0.002–0.005 RMSE.
    batch_size: int = 2048
    learning_rate: float = 0.003
    embedding_dim: int = 64
    rank_dim: int = 32  # > 0: separate ranking vectors of this width (0: share the rating ones)
    id_dropout: float = 0.1
    # The catalog's ids hidden from each ranking step, so that content alone ranks a movie
    # nobody rated yet (components/models/hybrid.py, ModelConfig).
    catalog_id_dropout: float = 0.1
    title_words: bool = False  # title words in the item tower (ModelConfig)
    l2: float = 3e-4  # rating parts and shared content embeddings
    rank_l2: Optional[float] = 3e-5  # ranking parts (None: l2)
    # weighted_squares (WALS's implicit objective) or softmax; unobserved_weight is w0 of the
    # former.
    retrieval: str = "weighted_squares"
    unobserved_weight: float = 0.2
    rating_weight: float = 1.0
    retrieval_weight: float = 1.0
    user_history: bool = True  # encode each user's rated items in the user tower (SVD++-style)
    # Continuous retraining: start the towers from the model in service, mapped by id
    # (components/training/warm_start.py), and train warm_start_epochs instead of epochs. Each warm
    # start adds its epochs to weights already fitted for `epochs`, and a chain of them
    # overfits: in `make replay`, next-week RMSE against cold retrains was +0.018 with 5 warm
    # epochs, +0.003 with 3, −0.008 with 2 and −0.013 with 1 (NDCG@10 the same for 1 and 2);
    # with 1, one week's candidate missed the release gate's RMSE bound (1.0517 > 1.05), with 2
    # none did. Chosen on the replay itself, which has no held-out part.
    warm_start: bool = True
    warm_start_epochs: int = 2
    # Known users' ranking: (1 − w)·towers + w·item-item (EASE, components/models/item_item.py) with
    # w = item_item_weight in [0, 1) (0: towers only) and λ = item_item_regularization.
    item_item_weight: float = 0.75
    item_item_regularization: float = 800.0
    # Each item's strongest item-item weights served (0: all), in catalogs of more than
    # item_item_whole_rows_up_to items: 256 lost nothing on a validation slice
    # (docs/choosing_settings.md); whole rows are as fast up to a few thousand items and slower,
    # and a far larger matrix, above (`make bench-item-item`).
    item_item_neighbours: int = 256
    item_item_whole_rows_up_to: int = 4096
    # Ratings of known (user, item) pairs: (1 − a)·towers + a·item autoencoder
    # (components/models/item_autoencoder.py) with a = autoencoder_share in [0, 1) (0: towers only).
    autoencoder_share: float = 0.4
    autoencoder_hidden: int = 500
    autoencoder_l2: float = 10.0
    autoencoder_epochs: int = 50
    autoencoder_warm_start_epochs: int = 10  # when warm_start carried its weights over
    # wals: an explicit fit (biases + factors) for ratings, an implicit one for ranking.
    # dim 10, λ 12: best on a 10% validation slice of ML-100K's u1.base (not on u1.test).
    wals_dim: int = 10
    wals_regularization: float = 12.0
    wals_iterations: int = 15
    # dim 30, λ 5, w0 0.2: best NDCG@10 on a validation slice of the stratified protocol's train
    # part (not its test part).
    wals_rank_dim: int = 30
    wals_rank_regularization: float = 5.0
    wals_unobserved_weight: float = 0.2
    # content
    content_cosine: bool = False
    # The towers under tf.distribute: "" trains in the Trainer's process; "mirrored" on every
    # local device; "multi_worker_mirrored" on every worker the TF_CONFIG environment variable
    # names (a Vertex AI or Kubeflow training job runs the Trainer once per worker).
    distribution: str = ""
    # With multi_worker_mirrored: the Trainer starts this many worker processes on this machine
    # (components/training/local_workers.py); 0: the workers are a training job's, each running
    # the Trainer with its own TF_CONFIG.
    local_workers: int = 0

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"training.model must be one of {', '.join(MODELS)}, "
                             f"got {self.model!r}")
        for name in ("item_item_weight", "autoencoder_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"training.{name} must be in [0, 1), "
                                 f"got {getattr(self, name)}")
        for name in ("example_budget", "autoencoder_example_budget"):
            if getattr(self, name) <= 0:
                raise ValueError(f"training.{name} must be positive, got {getattr(self, name)}")
        if self.item_item_neighbours < 0:
            raise ValueError(f"training.item_item_neighbours must be ≥ 0 (0: all), "
                             f"got {self.item_item_neighbours}")
        if self.item_item_whole_rows_up_to < 0:
            raise ValueError(f"training.item_item_whole_rows_up_to must be ≥ 0, "
                             f"got {self.item_item_whole_rows_up_to}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"training.distribution must be one of {DISTRIBUTIONS}, "
                             f"got {self.distribution!r}")
        if self.local_workers and self.distribution != "multi_worker_mirrored":
            raise ValueError("training.local_workers needs training.distribution: "
                             f"multi_worker_mirrored, got {self.distribution!r}")
        if self.local_workers < 0:
            raise ValueError(f"training.local_workers must be ≥ 0, got {self.local_workers}")
        if self.retrieval not in RETRIEVALS:
            raise ValueError(f"training.retrieval must be one of {', '.join(RETRIEVALS)}, "
                             f"got {self.retrieval!r}")

    def served_neighbours(self, num_items: int) -> int:
        """The item-item weights served per item for a catalog of num_items (0: all)."""
        return 0 if num_items <= self.item_item_whole_rows_up_to else self.item_item_neighbours

    @classmethod
    def from_custom_config(cls, custom_config: Dict[str, Any]) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (custom_config or {}).items() if k in names})


def vocabularies(transform_output: tft.TFTransformOutput) -> Vocabularies:
    buckets = transform_output.num_buckets_for_transformed_feature
    return Vocabularies(
        users=buckets(F.USER_INDEX), items=buckets(F.ITEM_INDEX),
        age_buckets=buckets(F.AGE_BUCKET), genders=buckets(F.GENDER_INDEX),
        occupations=buckets(F.OCCUPATION_INDEX), zip_prefixes=buckets(F.ZIP_PREFIX_INDEX),
        year_buckets=buckets(F.YEAR_BUCKET), genres=buckets(F.GENRE_INDICES),
        title_tokens=buckets(F.TITLE_TOKENS))


def _read(accessor: DataAccessor, files: List[str], transform_output) -> InMemoryExamples:
    """The raw examples through Transform's graph, in one pass. Transform does not write a
    transformed copy of the data (that pass was half of its time, and a second copy of every
    span on disk): the Trainer holds every rating in memory anyway and transforms them here,
    with the same graph `serving_default` applies."""
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=READ_BATCH, shuffle=False, num_epochs=1, drop_final_batch=False)
    raw = accessor.tf_dataset_factory(files, options, transform_output.raw_metadata.schema)
    transform = transform_output.transform_features_layer()

    def transformed(raw_features):
        features = dict(transform(raw_features))
        return features, features.pop(F.LABEL_KEY)

    return InMemoryExamples.read(
        transformed(batch) for batch in raw.prefetch(tf.data.AUTOTUNE)).in_canonical_order()


def distribution_strategy(config: TrainingConfig) -> tf.distribute.Strategy:
    if config.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.distribution == "multi_worker_mirrored":
        return multi_worker_strategy()
    return tf.distribute.get_strategy()


@functools.cache
def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """One per process, for the gate's fit and the refit alike: it configures the process's
    collective ops, which can be configured once."""
    return tf.distribute.MultiWorkerMirroredStrategy()


def budgeted_epochs(epochs: int, examples: int, budget: int) -> int:
    """epochs, or as many as budget examples allow where they would see more (at least one)."""
    return max(1, min(epochs, budget // max(examples, 1)))


class EpochTimes(tf.keras.callbacks.Callback):
    """When each training epoch started (seconds after `origin`, a time.monotonic()), how
    many wall seconds it took (the first includes tracing the step), and when training
    ended."""

    def __init__(self, origin: float):
        super().__init__()
        self._origin = origin
        self.starts: List[float] = []
        self.seconds: List[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()
        self.starts.append(self._start - self._origin)

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.monotonic() - self._start)

    def on_train_end(self, logs=None):
        self.train_end = time.monotonic() - self._origin


def hybrid_model(config: TrainingConfig, vocab: Vocabularies, catalog: Catalog) -> HybridModel:
    """The towers as configured, compiled with their optimizer, untrained."""
    model = HybridModel(
        vocab, ModelConfig(
            embedding_dim=config.embedding_dim, rank_dim=config.rank_dim,
            id_dropout=config.id_dropout, catalog_id_dropout=config.catalog_id_dropout,
            l2=config.l2, rank_l2=config.rank_l2, title_words=config.title_words),
        mean_rating=catalog.mean_rating, candidates=catalog.item_inputs(),
        rating_weight=config.rating_weight, retrieval_weight=config.retrieval_weight,
        retrieval=(SoftmaxRetrieval(name="retrieval") if config.retrieval == "softmax" else
                   WeightedSquaresRetrieval(np.diff(catalog.seen_splits),
                                            config.unobserved_weight, name="retrieval")),
        history=((catalog.seen_splits, catalog.seen_items, catalog.seen_ratings)
                 if config.user_history else None),
        popularity=catalog.popularity)
    model.compile(optimizer=fused_adam(config.learning_rate))
    return model


def fit_hybrid(config: TrainingConfig, vocab: Vocabularies, catalog: Catalog,
               train: tf.data.Dataset, steps_per_epoch: int, item_item: Optional[ItemNeighbours],
               previous=None, ids=None, cold: Optional[ColdItems] = None):
    """Trains the two-objective towers and, beside them, the item autoencoder (ratings); blends
    them with the item-item model (ranking, fitted before: fit_item_item). train: endless
    batches, steps_per_epoch of them an epoch; previous: (weights, ids) of the model in service
    to warm-start from (load_previous); ids: this run's ids per vocabulary; cold: the catalog's
    items without ratings, ranked from their content (components/training/cold_items.py)."""
    start = time.monotonic()
    users, items = catalog.user_inputs(), catalog.item_inputs()
    # Seeded here, not only at the start: loading Transform's graph draws from the global
    # seed's sequence, and the towers' initial values should not depend on how it was read.
    tf.keras.utils.set_random_seed(config.seed)
    strategy = distribution_strategy(config)
    with strategy.scope():
        model = hybrid_model(config, vocab, catalog)
        # Every variable, the optimizer's too, exists before fit traces the step: a first trace
        # that creates variables is traced again without them.
        for features, _ in train.take(1):
            model(features)
        create_slots(model.optimizer, model.trainable_variables)
        epochs, report = config.epochs, None
        if previous is not None:
            report = warm_start(model.variables, previous[0], previous[1], ids)
            logging.info("Warm start: %s", report)
            # The shorter schedule only where the towers' id rows were carried over.
            if report.carried(WARM_TOWERS):
                epochs = config.warm_start_epochs
        epochs = budgeted_epochs(epochs, catalog.num_ratings, config.example_budget)
    # The item autoencoder reads only the catalog, so it fits in a second thread while the
    # towers train: a towers' step is many small ops that leave a core idle.
    origin = time.monotonic()

    def fit_blended():
        return fit_autoencoder(config, catalog, previous, ids), time.monotonic() - origin

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as beside:
        blended = beside.submit(fit_blended)
        # No evaluation pass here: the Evaluator scores the eval split, blend included.
        epoch_times = EpochTimes(origin)
        history = model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            verbose=0, callbacks=[epoch_times])
        towers_seconds = time.monotonic() - origin
        autoencoder, blended_seconds = blended.result()
    logging.info("Training history: %s", history.history)
    # Epochs that started before blended_seconds shared the cores with the item autoencoder
    # (blended_models_seconds: the name the benchmark reads; EASE now fits before the towers).
    training = {"examples": catalog.num_ratings, "batch_size": config.batch_size,
                "epochs": epochs, "replicas": strategy.num_replicas_in_sync,
                "epoch_seconds": epoch_times.seconds, "epoch_starts": epoch_times.starts,
                # Each objective's mean over each epoch's steps (the run report's loss curves).
                "epoch_losses": {name: [float(value) for value in values]
                                 for name, values in history.history.items()},
                # When Keras ended training, and when fit returned after it.
                "train_end_seconds": epoch_times.train_end, "towers_seconds": towers_seconds,
                "blended_models_seconds": blended_seconds,
                # Building the towers (and warm-starting them) before the first epoch.
                "setup_seconds": origin - start}
    user_vectors, user_biases = model.user_tower(users)
    item_vectors, item_biases = model.item_tower(items)
    # Known users rank by a blend of the towers and the item-item model. The towers' share
    # scales the item side only, so every path that scores the towers (known ids, features,
    # strangers without history, whose order it leaves alone) gets the same blend.
    towers_share = 1.0 - config.item_item_weight
    rating_tables = dict(
        global_bias=float(model.global_bias.numpy()),
        user_vectors=model.rating_part(user_vectors).numpy(), user_biases=user_biases.numpy(),
        item_vectors=model.rating_part(item_vectors).numpy(), item_biases=item_biases.numpy())
    variables = list(model.variables)
    if autoencoder is not None:
        rating_tables = {name: getattr(autoencoder.tables, name) for name in rating_tables}
        variables += autoencoder.variables
        report = _merged(report, autoencoder.warm_start)
        training["autoencoder_epochs"] = autoencoder.epochs
    tables = TableModel(
        **rating_tables, table_rating_share=config.autoencoder_share,
        item_rank_biases=towers_share * model.rank_bias.numpy(),
        cold_item_rank_biases=towers_share * model.cold_rank_bias.numpy(),
        rank_user_vectors=model.rank_user_vectors(user_vectors).numpy(),
        rank_item_vectors=towers_share * model.rank_part(item_vectors).numpy(),
        item_item=item_item)
    if cold is not None and len(cold):
        tables = _with_cold_items(model, tables, vocab, catalog, cold, config.seed)
    training["tables_seconds"] = time.monotonic() - origin - max(towers_seconds, blended_seconds)
    return HybridFit(model, tables, variables, report, training)


def _with_cold_items(model: HybridModel, tables: TableModel, vocab: Vocabularies,
                     catalog: Catalog, cold: ColdItems, seed: int) -> TableModel:
    """tables serving the cold items too, from what a cold item has: the item tower's content
    vector (id masked) and the content prior of the rank biases, weighed by least squares on
    the known items' served scores (cold_items.calibration) — the item-item part has no
    column for them, and the towers' own content rank bias ranked them below that prior.
    Each bias table is fitted on the users it serves: known users' scores carry the item-item
    rows of their history, strangers' (demographics only) carry none: one shift for both
    would put new movies at the top of every stranger's list."""
    hidden = {F.ITEM_INDEX: tf.fill([catalog.num_items], tf.constant(
        vocab.items - F.OOV_BUCKETS, tf.int64))}
    content, _ = model.item_tower({**catalog.item_inputs(), **hidden})
    content = model.rank_part(content).numpy()
    known_rows, cold_rows = _content_rows(vocab, catalog, cold)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.permutation(catalog.num_users)[:CALIBRATION_USERS])
    rank_users = tables.rank_user_vectors[users]
    served = rank_users @ tables.rank_item_vectors.T + tables.item_rank_biases
    if tables.item_item is not None:
        seen = scipy.sparse.csr_matrix(
            (np.ones(len(catalog.seen_items), np.float32), catalog.seen_items,
             catalog.seen_splits[:-1]), shape=(catalog.num_users, catalog.num_items))
        served += (seen[users] @ tables.item_item.sparse()).toarray()
    prior = content_prior(known_rows, tables.item_rank_biases, known_rows)
    (vector_weight, bias_weight), shift = calibration([rank_users @ content.T, prior], served)
    # The same users as strangers: their demographics through the user tower, id and history
    # masked (what recommend_with_features serves a user the model never saw).
    sample = {name: tf.gather(values, users) for name, values in catalog.user_inputs().items()}
    strangers, _ = model.user_tower(sample, known=tf.zeros([len(users)]))
    strangers = model.rank_user_vectors(strangers).numpy()
    stranger_served = strangers @ tables.rank_item_vectors.T + tables.cold_item_rank_biases
    stranger_prior = content_prior(known_rows, tables.cold_item_rank_biases, known_rows)
    # The cold item's vector part is shared with known users; only its bias is fitted here.
    (stranger_weight,), stranger_shift = calibration(
        [stranger_prior], stranger_served - vector_weight * (strangers @ content.T))
    cold_vectors, _ = model.item_tower(cold.features)
    cold_vectors = model.rank_part(cold_vectors).numpy()
    extended = with_cold_items(tables, known_rows, cold_rows, vector_weight * cold_vectors,
                               known_users_map=(bias_weight, shift),
                               strangers_map=(stranger_weight, stranger_shift))
    return dataclasses.replace(extended, content_rank_vectors=np.concatenate(
        [content, cold_vectors]))


def _content_rows(vocab: Vocabularies, catalog: Catalog, cold: ColdItems):
    """The known and the cold items' content rows (cold_items.content_matrix)."""
    def rows(year_buckets, genres):
        return content_matrix(year_buckets, genres, vocab.year_buckets, vocab.genres)

    return (rows(catalog.item_year_buckets, catalog.item_genres),
            rows(cold.features[F.YEAR_BUCKET].numpy(), genre_lists(cold.features)))


@dataclasses.dataclass
class HybridFit:
    towers: HybridModel
    tables: TableModel  # what serves the blend
    variables: List[tf.Variable]  # the towers' and the autoencoder's: the next warm start's
    warm_start: Optional[WarmStartReport]  # None for a cold start
    training: Dict[str, Any]  # the towers' training record (TRAINING_FILE)


def _merged(towers: Optional[WarmStartReport], autoencoder: Optional[WarmStartReport]
            ) -> Optional[WarmStartReport]:
    if towers is None or autoencoder is None:
        return towers or autoencoder
    return WarmStartReport(copied=towers.copied + autoencoder.copied,
                           mapped={**towers.mapped, **autoencoder.mapped},
                           new_ids=towers.new_ids)


def fit_autoencoder(config: TrainingConfig, catalog: Catalog, previous, ids
                    ) -> Optional[FittedAutoencoder]:
    """The item autoencoder, warm-started from previous where that holds one, for the epochs
    its budget allows (None where its share is 0)."""
    if config.autoencoder_share <= 0:
        return None

    def budgeted(epochs):
        return budgeted_epochs(epochs, catalog.num_ratings, config.autoencoder_example_budget)

    return fit_item_autoencoder(catalog, AutoencoderConfig(
        hidden=config.autoencoder_hidden, l2=config.autoencoder_l2,
        epochs=budgeted(config.autoencoder_epochs),
        warm_start_epochs=budgeted(config.autoencoder_warm_start_epochs), seed=config.seed),
        previous=previous, ids=ids)


def fit_item_item(config: TrainingConfig, catalog: Catalog) -> Optional[ItemNeighbours]:
    """EASE's item-item weights scaled by their share, each item's strongest kept where the
    catalog is large (None where their share is 0)."""
    if config.item_item_weight <= 0:
        return None
    return strongest_neighbours(fit_ease(
        catalog.seen_splits, catalog.seen_items, catalog.num_items,
        config.item_item_regularization, scale=config.item_item_weight),
        config.served_neighbours(catalog.num_items))


def fit_wals_tables(config: TrainingConfig, catalog: Catalog) -> TableModel:
    users, items, ratings = catalog.pairs()
    shape = dict(num_users=catalog.num_users, num_items=catalog.num_items)
    explicit = fit_wals(users, items, ratings, **shape, config=WalsConfig(
        dim=config.wals_dim, regularization=config.wals_regularization,
        iterations=config.wals_iterations, seed=config.seed))
    implicit = fit_wals(users, items, ratings, **shape, config=WalsConfig(
        dim=config.wals_rank_dim, regularization=config.wals_rank_regularization,
        unobserved_weight=config.wals_unobserved_weight, iterations=config.wals_iterations,
        seed=config.seed))
    as32 = lambda values: np.asarray(values, np.float32)  # noqa: E731
    return TableModel(
        global_bias=explicit.global_mean, user_vectors=as32(explicit.user_factors),
        user_biases=as32(explicit.user_bias), item_vectors=as32(explicit.item_factors),
        item_biases=as32(explicit.item_bias),
        item_rank_biases=as32(implicit.item_bias),
        rank_user_vectors=as32(implicit.user_factors),
        rank_item_vectors=as32(implicit.item_factors))


class Laps:
    """Wall seconds of each phase of run_fn, in order (training.json: the Trainer's profile)."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase], self._last = now - self._last, now


def run_fn(fn_args: FnArgs) -> None:
    """TFX calls this with the raw examples and the Transform graph."""
    workers = TrainingConfig.from_custom_config(fn_args.custom_config).local_workers
    if workers:
        train_on_local_workers(fn_args, workers, _train_and_export)
    else:
        _train_and_export(fn_args)
    _return_freed_memory()


def _return_freed_memory() -> None:
    """Hands the heap glibc keeps after frees back to the system: the components after the
    Trainer run in the same process. (TensorFlow's own pool, which never hands memory back,
    is off under `recsys`: pipeline/cli.py.)"""
    gc.collect()  # the Keras model's reference cycles hold its tensors
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: nothing to trim
        pass


def _train_and_export(fn_args: FnArgs) -> None:
    """Fits on the train split and exports that model for the gate (Format-TFMA: what the
    Evaluator and the release gate score, as they score the model in service's); then refits on
    both splits, warm-started from it, and exports the refit for the Pusher (Format-Serving):
    the eval split exists to gate, not to starve the served model."""
    laps = Laps()
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocab = vocabularies(transform_output)
    train = _read(fn_args.data_accessor, fn_args.train_files, transform_output)
    # The pushed model refits on both splits, warm-started from the gate's: warm_start_epochs
    # and autoencoder_warm_start_epochs (docs/design.md). No eval split (make bench's towers
    # alone): one fit.
    refit = bool(fn_args.eval_files)
    held_out = (_read(fn_args.data_accessor, fn_args.eval_files, transform_output)
                if refit else None)
    laps.lap("read")  # with loading Transform's graph and vocabularies
    shape = dict(num_users=vocab.users - F.OOV_BUCKETS, num_items=vocab.items - F.OOV_BUCKETS)
    catalog = build_catalog(train.batches(READ_BATCH), **shape)
    if refit:
        full_catalog = build_catalog(
            train.batches(READ_BATCH).concatenate(held_out.batches(READ_BATCH)), **shape)
        # Side features of every user and item, the eval split's only ones too (not ratings).
        catalog = dataclasses.replace(
            catalog, user_features=full_catalog.user_features,
            item_year_buckets=full_catalog.item_year_buckets,
            item_genres=full_catalog.item_genres,
            item_title_tokens=full_catalog.item_title_tokens)
    ids = {name: transform_output.vocabulary_by_name(name)
           for name in (F.USER_VOCAB, F.ITEM_VOCAB)}
    # Every item of items.csv is served: those no rating names from their content.
    table = read_item_catalog(list(dict.fromkeys(
        examples_uri_of(pattern) for pattern in fn_args.train_files)))
    known_ids = [item_id.decode() for item_id in ids[F.ITEM_VOCAB][:shape["num_items"]]]
    cold = cold_items(table, known_ids, TransformGraph(transform_output))
    served_items = ServedItems.of(known_ids, cold.item_ids, table)
    laps.lap("catalog")
    service = (tf.saved_model.load(fn_args.base_model) if fn_args.base_model else None)
    previous = (load_previous(service, fn_args.base_model)
                if config.warm_start and service is not None else None)
    laps.lap("load_previous")
    gate = fit_model(config, vocab, catalog, train, previous, ids, laps, cold=cold)
    hybrid = gate.hybrid
    record, warm_report = (hybrid.training, hybrid.warm_start) if hybrid else (None, None)
    served, served_catalog = gate, catalog
    if refit:
        _export(gate, transform_output, catalog, served_items, None, fn_args.eval_model_dir)
        laps.lap("export")
        refit_from = (weights_of(hybrid.variables), ids) if hybrid else None
        # The gate's towers and their input pipeline hold the train split: freed before the
        # split copies are joined.
        del gate, served, hybrid
        gc.collect()
        everything = train.concatenated(held_out)
        del train, held_out
        served = fit_model(config, vocab, full_catalog, everything, refit_from, ids, laps,
                           phase="refit_", cold=cold)
        served_catalog = full_catalog
        if served.hybrid is not None:
            record = {**record, "refit": served.hybrid.training}
    exclusions = (carried_exclusions(service, fn_args.base_model, ids[F.USER_VOCAB],
                                     [i.encode() for i in served_items.item_ids], served_catalog)
                  if service is not None else None)
    _export(served, transform_output, served_catalog, served_items, exclusions,
            fn_args.serving_model_dir)
    laps.lap("refit_export" if refit else "export")
    if record is not None:
        records = {TRAINING_FILE: {**record, "phase_seconds": laps.seconds}}
        if warm_report is not None:
            records[WARM_START_FILE] = dataclasses.asdict(warm_report)
        for name, contents in records.items():
            with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, name), "w") as handle:
                handle.write(json.dumps(contents, indent=2))


@dataclasses.dataclass
class FittedModel:
    tables: TableModel
    hybrid: Optional[HybridFit]  # the towers, for the hybrid


def fit_model(config: TrainingConfig, vocab: Vocabularies, catalog: Catalog,
              examples: InMemoryExamples, previous, ids, laps: Laps, phase: str = "",
              cold: Optional[ColdItems] = None) -> FittedModel:
    """The configured model kind fitted on examples (whose pairs the catalog holds), serving
    the cold items too."""
    cold = cold or ColdItems.empty()
    if config.model != "hybrid":
        fit = {"wals": fit_wals_tables, "popularity": lambda _, c: fit_popularity(c),
               "content": lambda cfg, c: fit_content(c, vocab.genres, cosine=cfg.content_cosine)}
        tables = fit[config.model](config, catalog)
        if len(cold):
            tables = with_cold_items(tables, *_content_rows(vocab, catalog, cold),
                                     _cold_table_vectors(config, tables, vocab, cold))
        laps.lap(f"{phase}fit")
        return FittedModel(tables, None)
    # Before the towers' batches exist: EASE's float64 Gramian (0.9 GB at 10K items) then
    # never coincides with the input pipeline's copy of the examples or the autoencoder.
    item_item = fit_item_item(config, catalog)
    laps.lap(f"{phase}item_item")
    fitted = fit_hybrid(
        config, vocab, catalog,
        examples.batches(config.batch_size, shuffle=True, seed=config.seed, endless=True),
        examples.steps(config.batch_size), item_item, previous=previous, ids=ids, cold=cold)
    laps.lap(f"{phase}fit")
    return FittedModel(fitted.tables, fitted)


def _cold_table_vectors(config: TrainingConfig, tables: TableModel, vocab: Vocabularies,
                        cold: ColdItems) -> np.ndarray:
    """The cold items' rank vectors of a table model: their genres for the content model
    (its item vectors are genres), nothing for the collaborative ones."""
    if config.model == "content":
        genres = genre_lists(cold.features)
        return genre_matrix(genres, vocab.genres, config.content_cosine)
    return np.zeros((len(cold), tables.rank_item_vectors.shape[1]), np.float32)


def _export(fitted: FittedModel, transform_output, catalog: Catalog, items: ServedItems,
            exclusions: Optional[Exclusions], directory: str) -> None:
    hybrid = fitted.hybrid
    export(RecommenderModule(fitted.tables, transform_output, catalog, items,
                             hybrid.towers if hybrid else None,
                             hybrid.variables if hybrid else (), exclusions), directory)
