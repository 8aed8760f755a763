"""Compiles the pipeline for Kubeflow Pipelines v2 (and Vertex AI Pipelines): one JSON spec,
every step running in the project's image (Dockerfile), the same create_pipeline() as locally.

KFP v2 cannot compile the span window's resolver (SpanRangeStrategy), so there each run
trains on its latest span alone, with Transform's analyzer cache, the drift gate and the warm
start from the model in service carrying what came before.
"""

import dataclasses
import os

from pipeline.config import PipelineConfig
from pipeline.fingerprint import source_fingerprint
from pipeline.pipeline import create_pipeline

IMAGE_PROJECT_DIR = "/pipeline"  # where the Dockerfile copies the project
DEFAULT_IMAGE = "recsys-pipeline:latest"


def compile_pipeline(config: PipelineConfig, spec_file: str, image: str = DEFAULT_IMAGE) -> str:
    """Writes the pipeline spec to spec_file; returns its path. data_dir and output_dir must
    be paths the cluster can read and write (gs://..., a mounted volume)."""
    from tfx import v1 as tfx

    config = dataclasses.replace(
        config, layout="spans" if config.layout == "auto" else config.layout,
        schema_file=os.path.join(IMAGE_PROJECT_DIR, "schemas", "schema.pbtxt"),
        project_dir=IMAGE_PROJECT_DIR)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(spec_file)),
        output_filename=os.path.basename(spec_file))
    runner.run(create_pipeline(config, source_fingerprint(), rolling_window=False))
    return spec_file
