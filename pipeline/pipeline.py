"""create_pipeline(): wires the components, nothing else. Runners live beside it.

TFX's classes come from their own modules, not `tfx.v1`: that package imports every Google
Cloud extension (Vertex AI, BigQuery clients), ~4 s of every run's start for nothing here."""

import dataclasses

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tfx.components import (
    ExampleValidator,
    StatisticsGen,
    Trainer,
    Transform,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.pipeline import Pipeline
from tfx.proto.example_gen_pb2 import Input, Output, SplitConfig
from tfx.proto.pusher_pb2 import PushDestination
from tfx.proto.range_config_pb2 import RangeConfig, StaticRange
from tfx.proto.transform_pb2 import SplitsConfig as TransformSplits
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from components import features as F
from components.evaluator.executor import Evaluator
from components.example_gen.executor import create_example_gen
from components.pusher.executor import Pusher
from components.release_gate.component import RankingGate
from components.transform.preprocessing import SCHEMA_FILE_KEY
from components.validation_gate.component import ValidationGate
from pipeline.config import EvaluationConfig, PipelineConfig
from pipeline.validated_spans import ValidatedSpansStrategy

TRANSFORM_FN = "components.transform.preprocessing.preprocessing_fn"
TRAINER_FN = "components.training.trainer.run_fn"
METRICS_MODULE = "components.evaluator.metrics"
RELEASE_GATE_ID = "ReleaseGate"
EXAMPLE_GEN_ID = "FileBasedExampleGen"
ALL_SPANS = 2**31 - 1  # RollingRange.num_spans is int32


def eval_config(evaluation: EvaluationConfig) -> tfma.EvalConfig:
    """RMSE, MAE and counts, overall and per slice; RMSE gates the blessing."""
    rmse_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": evaluation.max_rmse}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER,
            absolute={"value": evaluation.max_rmse_increase}))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key=F.LABEL,
                                    prediction_key="rating")],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[s]) for s in F.SLICES],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="MeanAbsoluteRatingError", module=METRICS_MODULE),
            tfma.MetricConfig(
                class_name="RootMeanSquaredError", module=METRICS_MODULE,
                # Gate on the overall slice only; the slices are reported, not gated.
                per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                    slicing_specs=[tfma.SlicingSpec()], threshold=rmse_threshold)]),
        ])])


def example_splits(config: PipelineConfig):
    """ExampleGen's input/output configs: one input, hashed into the train and eval splits."""
    return {"input_config": Input(splits=[
                Input.Split(name="ratings", pattern=config.ratings_pattern)]),
            "output_config": Output(split_config=SplitConfig(splits=[
                SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in config.split_buckets]))}


def _span_window(config: PipelineConfig, example_gen, validation_gate):
    """The last `span_window` spans ExampleGen has written (all when 0), less those the
    validation gate stopped; resolved once this run's span has passed the gate."""
    window = Resolver(
        strategy_class=ValidatedSpansStrategy,
        config={"num_spans": config.span_window or ALL_SPANS},
        examples=Channel(type=standard_artifacts.Examples,
                         producer_component_id=example_gen.id)).with_id("span_window")
    window.add_upstream_node(validation_gate)
    return window


def _analyzer_cache():
    """Transform's latest analyzer cache: spans it has analyzed are not analyzed again."""
    return Resolver(
        strategy_class=LatestArtifactStrategy,
        cache=Channel(type=standard_artifacts.TransformCache),
    ).with_id("transform_cache_resolver")


def _previous_statistics(statistics_gen, skip_stopped: bool):
    """The statistics of the previous run's span, resolved before this run computes its own;
    a span the gate stopped is skipped where the orchestrator compiles our strategy."""
    strategy = ({"strategy_class": ValidatedSpansStrategy, "config": {"num_spans": 1}}
                if skip_stopped else
                {"strategy_class": LatestArtifactStrategy})
    previous = Resolver(
        **strategy,
        statistics=Channel(type=standard_artifacts.ExampleStatistics,
                           producer_component_id=statistics_gen.id),
    ).with_id("previous_statistics")
    statistics_gen.add_upstream_node(previous)
    return previous


def create_span_pipeline(config: PipelineConfig, code_version: str, span: int) -> Pipeline:
    """ExampleGen alone on one given span: catches up on spans that arrived between runs
    (ExampleGen reads only the latest span per run), in the same pipeline and metadata."""
    example_gen = create_example_gen(
        input_base=config.data_dir, code_version=code_version,
        range_config=RangeConfig(static_range=StaticRange(
            start_span_number=span, end_span_number=span)), **example_splits(config))
    return _pipeline(config, [example_gen])


def create_pipeline(config: PipelineConfig, code_version: str,
                    rolling_window: bool = True) -> Pipeline:
    """code_version: a fingerprint of the components' source, so the cache sees code edits.
    rolling_window=False where the orchestrator cannot compile our span resolvers (Kubeflow
    V2): spans then train on the latest span alone, with the analyzer cache and the warm start,
    and drift is measured against the latest statistics, stopped span or not."""
    example_gen = create_example_gen(
        input_base=config.data_dir, code_version=code_version, **example_splits(config))
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"],
        # Top values and unique counts from sketches in TFDV's combiner (as TFDV's in-memory
        # path does) rather than a Beam count per feature value. Exact for every feature with
        # fewer than 1,024 distinct values (the schema's domains); item ids' frequencies
        # within 1/1,025 of the total, against the drift threshold of 0.02.
        stats_options=tfdv.StatsOptions(use_sketch_based_topk_uniques=True))
    schema_gen = ImportSchemaGen(schema_file=config.schema_file)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    resolvers, drift = [], {}
    if config.spanned:
        previous = _previous_statistics(statistics_gen, skip_stopped=rolling_window)
        resolvers.append(previous)
        drift = dict(statistics=statistics_gen.outputs["statistics"],
                     previous_statistics=previous.outputs["statistics"],
                     schema=schema_gen.outputs["schema"])
    validation_gate = ValidationGate(anomalies=example_validator.outputs["anomalies"], **drift)
    training_examples, analyzer_cache = example_gen.outputs["examples"], None
    split_names = [name for name, _ in config.split_buckets]
    if config.spanned:
        cache = _analyzer_cache()
        resolvers.append(cache)
        analyzer_cache = cache.outputs["cache"]
        if rolling_window:
            window = _span_window(config, example_gen, validation_gate)
            resolvers.append(window)
            training_examples = window.outputs["examples"]
    transform = Transform(
        examples=training_examples, schema=schema_gen.outputs["schema"],
        analyzer_cache=analyzer_cache,
        preprocessing_fn=TRANSFORM_FN,
        # Vocabularies over both splits: the pushed model refits on both (training/trainer.py).
        splits_config=TransformSplits(analyze=split_names, transform=split_names),
        custom_config={"code_version": code_version, SCHEMA_FILE_KEY: config.schema_file},
        # StatisticsGen already described the raw data; TFDV over the raw and the transformed
        # examples again cost Transform seconds and nothing reads it. The TF1 graph mode
        # analyzes and transforms ML-100K in 19 s against 27 s traced as TF2 functions; the
        # exported graph serves the same through TFT's loader. No transformed copy of the
        # examples: the Trainer applies the graph as it reads (training/trainer.py, _read).
        disable_statistics=True, force_tf_compat_v1=True, materialize=False)
    transform.add_upstream_node(validation_gate)
    baseline = _latest_blessed_model()
    trainer = Trainer(
        run_fn=TRAINER_FN,
        examples=training_examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        # Continuous retraining warm-starts from the model in service.
        base_model=baseline.outputs["model"] if config.spanned else None,
        custom_config={**dataclasses.asdict(config.training), "code_version": code_version})
    return _pipeline(config, [
        example_gen, statistics_gen, schema_gen, example_validator, validation_gate,
        *resolvers, transform, trainer, baseline,
        *_release(config, example_gen, trainer, baseline)])


def _pipeline(config: PipelineConfig, components) -> Pipeline:
    # Embedded SQLite metadata for a local output folder; on a cluster (gs://...) the
    # orchestrator brings its own store.
    metadata = (None if "://" in config.metadata_path else
                sqlite_metadata_connection_config(config.metadata_path))
    return Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam_pipeline_args),
        enable_cache=True)


def _latest_blessed_model():
    """The model in service: the latest the release gate blessed (rollbacks revoke later
    blessings, so it follows them)."""
    return Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        # The release gate's blessings only: a model TFMA blessed may still fail the ranking.
        model_blessing=Channel(type=standard_artifacts.ModelBlessing,
                               producer_component_id=RELEASE_GATE_ID),
    ).with_id("latest_blessed_model_resolver")


def _release(config: PipelineConfig, example_gen, trainer, baseline_resolver) -> list:
    """Evaluator (rating metrics) and RankingGate (top-k metrics) against the model in
    service, and Pusher of models that pass both."""
    gate = config.evaluation
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        example_splits=["eval"],
        eval_config=eval_config(config.evaluation))
    release_gate = RankingGate(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        rating_blessing=evaluator.outputs["blessing"],
        baseline_model=baseline_resolver.outputs["model"],
        metric=gate.ranking_metric, k=gate.ranking_k, min_value=gate.min_ranking,
        max_drop=gate.max_ranking_drop).with_id(RELEASE_GATE_ID)
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=release_gate.outputs["release_blessing"],
        push_destination=PushDestination(
            filesystem=PushDestination.Filesystem(base_directory=config.serving_dir)))
    return [evaluator, release_gate, pusher]
