"""Trainer entry point: fit the hybrid model on transformed examples and export the contract."""

import dataclasses
from typing import Any, Dict, List

import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from components import features as F
from components.catalog import build_catalog
from components.export import RecommenderModule, export
from components.model import HybridRatingModel, ModelConfig, Vocabularies

CATALOG_BATCH = 65536


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters, passed by the pipeline as the Trainer's custom_config."""

    epochs: int = 10
    batch_size: int = 1024
    learning_rate: float = 0.003
    embedding_dim: int = 32
    id_dropout: float = 0.1
    l2: float = 1e-5
    seed: int = 42

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
        year_buckets=buckets(F.YEAR_BUCKET), genres=buckets(F.GENRE_INDICES))


def _dataset(accessor: DataAccessor, files: List[str], transform_output, batch_size: int,
             shuffle: bool, seed: int, num_epochs=1) -> tf.data.Dataset:
    options = tfxio.TensorFlowDatasetOptions(
        batch_size=batch_size, label_key=F.LABEL_KEY, shuffle=shuffle, shuffle_seed=seed,
        shuffle_buffer_size=100_000, num_epochs=num_epochs, drop_final_batch=False)
    return accessor.tf_dataset_factory(
        files, options, transform_output.transformed_metadata.schema).prefetch(tf.data.AUTOTUNE)


def run_fn(fn_args: FnArgs) -> None:
    """TFX calls this with the transformed examples and the Transform graph."""
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    vocab = vocabularies(transform_output)
    catalog = build_catalog(
        _dataset(fn_args.data_accessor, fn_args.train_files, transform_output, CATALOG_BATCH,
                 shuffle=False, seed=config.seed),
        num_users=vocab.users - F.OOV_BUCKETS, num_items=vocab.items - F.OOV_BUCKETS)
    model = HybridRatingModel(
        vocab, ModelConfig(config.embedding_dim, config.id_dropout, config.l2),
        mean_rating=catalog.mean_rating)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate),
                  loss=tf.keras.losses.MeanSquaredError(),
                  metrics=[tf.keras.metrics.RootMeanSquaredError(name="rmse")])
    train = _dataset(fn_args.data_accessor, fn_args.train_files, transform_output,
                     config.batch_size, shuffle=True, seed=config.seed)
    evaluation = _dataset(fn_args.data_accessor, fn_args.eval_files, transform_output,
                          CATALOG_BATCH, shuffle=False, seed=config.seed)
    history = model.fit(train, epochs=config.epochs, validation_data=evaluation, verbose=0)
    logging.info("Training history: %s", history.history)
    export(RecommenderModule(model, transform_output, catalog), fn_args.serving_model_dir)
