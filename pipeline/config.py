"""All configuration of a pipeline run, typed, in one place; read from YAML by `--config`."""

import dataclasses
import os
from typing import Any, Dict, Tuple

import yaml

from components.training.trainer import TrainingConfig
from data import raw_format as R
from data import spans

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA_FILE = os.path.join(PROJECT_DIR, "schemas", "schema.pbtxt")
LAYOUTS = ("auto", "spans", "flat")
BEAM_RUNNERS = ("direct", "dask")
DASK_RUNNER = "pipeline.on_dask.runner.DaskRunner"
# Beam options that tell workers where their code comes from. With none of them TFX copies and
# packages its own install (49 MB, ~4.5 s) for every Beam component, even on the DirectRunner.
DEPENDENCY_OPTIONS = ("--setup_file", "--extra_package", "--extra_packages", "--requirements_file",
                      "--sdk_container_image", "--worker_harness_container_image")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The release gate: a model is blessed only if it passes both thresholds."""

    max_rmse: float = 1.05  # absolute: the global-mean baseline lands near 1.12 on MovieLens
    max_rmse_increase: float = 0.01  # change: tolerated RMSE increase over the blessed baseline
    # Top-k over the whole catalog, seen items excluded, on the eval split.
    ranking_metric: str = "ndcg@10"
    ranking_k: int = 10
    min_ranking: float = 0.05  # absolute
    max_ranking_drop: float = 0.01  # change: tolerated drop below the blessed baseline


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    data_dir: str = os.path.join(PROJECT_DIR, "datasets", "ml-100k")
    output_dir: str = os.path.join(PROJECT_DIR, "output")
    pipeline_name: str = "recsys"
    # Training reads the last span_window spans of a spanned data folder (0: all of them).
    span_window: int = 0
    # auto: spans if data_dir holds span-N folders (data/spans.py); spans or flat: as told
    # (for a data folder this process cannot list, e.g. when compiling for Kubeflow).
    layout: str = "auto"
    # Hash buckets of the train/eval split ExampleGen makes.
    split_buckets: Tuple[Tuple[str, int], ...] = (("train", 4), ("eval", 1))
    schema_file: str = SCHEMA_FILE
    beam_args: Tuple[str, ...] = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
    # dask: the Beam components on a Dask cluster (pipeline/on_dask/): the one at dask_address
    # or DASK_SCHEDULER_ADDRESS, else a local one of dask_workers processes for the command.
    beam_runner: str = "direct"
    dask_workers: int = 2
    dask_address: str = ""
    # Where this project's setup.py is, for Beam workers on other machines (the image's copy
    # when compiled for Kubeflow).
    project_dir: str = PROJECT_DIR
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.beam_runner not in BEAM_RUNNERS:
            raise ValueError(f"beam_runner must be one of {', '.join(BEAM_RUNNERS)}, "
                             f"got {self.beam_runner!r}")
        if self.dask_workers < 1:
            raise ValueError(f"dask_workers must be at least 1, got {self.dask_workers}")

    @property
    def spanned(self) -> bool:
        """Whether data_dir holds spans (data/spans.py); with layout auto, as of now."""
        if self.layout == "flat":
            return False
        return self.layout == "spans" or spans.is_spanned(self.data_dir)

    @property
    def ratings_pattern(self) -> str:
        """ExampleGen's input pattern (relative to data_dir)."""
        return f"{spans.SPAN_PATTERN}/{R.RATINGS_FILE}" if self.spanned else R.RATINGS_FILE

    @property
    def raw_folders(self) -> Tuple[str, ...]:
        """The raw data folders this run's ExampleGen reads: the latest span of a spanned
        folder (older spans were checked when ingested) or the folder itself; the first also
        serves titles and samples."""
        return (spans.latest_folder(self.data_dir),)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.output_dir, "serving")

    @property
    def reports_dir(self) -> str:
        return os.path.join(self.output_dir, "reports")

    @property
    def beam_pipeline_args(self) -> Tuple[str, ...]:
        """beam_args (with the Dask runner where beam_runner is dask), plus this project as the
        workers' package unless they name their own (a remote runner's workers need
        components/ and data/; the DirectRunner ignores it)."""
        args = self.beam_args
        if self.beam_runner == "dask":
            args += (f"--runner={DASK_RUNNER}",) + (
                (f"--dask_client_address={self.dask_address}",) if self.dask_address else ())
        if any(arg.split("=")[0] in DEPENDENCY_OPTIONS for arg in args):
            return args
        return args + (f"--setup_file={os.path.join(self.project_dir, 'setup.py')}",)

    def with_beam_args(self, extra) -> "PipelineConfig":
        return dataclasses.replace(self, beam_args=tuple(self.beam_args) + tuple(extra))


_SECTIONS = {"training": TrainingConfig, "evaluation": EvaluationConfig}


def _typed(cls, values: Dict[str, Any], where: str):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(
            f"{where}: unknown setting '{unknown[0]}'; known: {', '.join(sorted(fields))}")
    return values


def load_config(path: str = None, **overrides) -> PipelineConfig:
    """Defaults, then the YAML file's settings, then explicit overrides (None means unset)."""
    values: Dict[str, Any] = {}
    if path:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        _typed(PipelineConfig, values, path)
        for section, cls in _SECTIONS.items():
            if section in values:
                values[section] = cls(**_typed(cls, values[section] or {}, f"{path}: {section}"))
        for key in ("beam_args", "split_buckets"):
            if key in values:
                values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in values[key])
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("data_dir", "output_dir"):
        if key in values and "://" not in values[key]:  # gs://, s3://, hdfs:// stay as given
            values[key] = os.path.abspath(values[key])
    return PipelineConfig(**values)
