"""Beam options given to `recsys run` reach every Beam-powered component of the compiled
pipeline (how DirectRunner parallelism, Dataflow, Flink or Spark are chosen)."""

import os
import sys

import pytest
from absl import flags
from tfx.components.statistics_gen.executor import Executor as StatisticsGenExecutor
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import executable_spec_pb2, pipeline_pb2

from pipeline import cli
from pipeline.config import DASK_RUNNER, PROJECT_DIR, PipelineConfig
from pipeline.local_runner import arguments_hidden_from_absl
from pipeline.pipeline import create_pipeline

BEAM_COMPONENTS = {"FileBasedExampleGen", "StatisticsGen", "Transform", "Evaluator"}


def _beam_args_by_component(config):
    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    compiler.Compiler().compile(create_pipeline(config, "test")).deployment_config.Unpack(
        deployment)
    found = {}
    for name, spec in deployment.executor_specs.items():
        beam = executable_spec_pb2.BeamExecutableSpec()
        if spec.Is(beam.DESCRIPTOR):
            spec.Unpack(beam)
            found[name] = list(beam.beam_pipeline_args)
    return found


def test_cli_and_yaml_beam_args_reach_every_beam_component(synthetic_folder, tmp_path,
                                                           monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "_command_run", lambda args, config: seen.append(config) or 0)
    config_file = tmp_path / "config.yaml"
    config_file.write_text('beam_args: ["--runner=DirectRunner"]\n')
    assert cli.main(["run", "--data", synthetic_folder, "--output", str(tmp_path / "out"),
                     "--config", str(config_file),
                     "--beam-arg=--direct_running_mode=multi_processing",
                     "--beam-arg=--direct_num_workers=2"]) == 0
    found = _beam_args_by_component(seen[0])
    assert set(found) == BEAM_COMPONENTS
    setup_file = f"--setup_file={os.path.join(PROJECT_DIR, 'setup.py')}"
    for args in found.values():
        assert args == ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                        "--direct_num_workers=2", setup_file]


def test_workers_get_the_project_unless_the_args_name_their_own_dependencies():
    assert os.path.isfile(os.path.join(PROJECT_DIR, "setup.py"))
    config = PipelineConfig(beam_args=("--runner=DataflowRunner",))
    assert config.beam_pipeline_args[-1] == f"--setup_file={PROJECT_DIR}/setup.py"
    for option in ("--sdk_container_image=gcr.io/p/recsys:1", "--requirements_file=r.txt"):
        own = PipelineConfig(beam_args=("--runner=DataflowRunner", option))
        assert own.beam_pipeline_args == own.beam_args


def test_the_processs_arguments_do_not_reach_the_beam_executors_flags(monkeypatch):
    """TFX's Beam executors parse sys.argv as absl flags: `recsys run -v` failed in every one
    (absl's -v is its verbosity, a number). The runner hides them while the pipeline runs."""
    argv = ["recsys", "run", "-v", "--data", "ratings"]
    monkeypatch.setattr("sys.argv", list(argv))
    # With the project's dependency option, as the pipeline passes it: without one, each
    # executor packages TFX's whole install into a temporary folder (~49 MB, never removed).
    context = StatisticsGenExecutor.Context(beam_pipeline_args=list(PipelineConfig(
        beam_args=("--direct_num_workers=1",)).beam_pipeline_args))
    with pytest.raises(flags.IllegalFlagValueError):
        StatisticsGenExecutor(context)
    with arguments_hidden_from_absl():
        StatisticsGenExecutor(context)
    assert sys.argv == argv  # given back afterwards


def test_beam_runner_dask_reaches_every_beam_component(synthetic_folder, tmp_path,
                                                        monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "_command_run", lambda args, config: seen.append(config) or 0)
    assert cli.main(["run", "--data", synthetic_folder, "--output", str(tmp_path / "out"),
                     "--beam-runner", "dask", "--dask-workers", "3",
                     "--dask-address", "tcp://127.0.0.1:8786"]) == 0
    assert (seen[0].beam_runner, seen[0].dask_workers) == ("dask", 3)
    found = _beam_args_by_component(seen[0])
    assert set(found) == BEAM_COMPONENTS
    for args in found.values():
        assert args[-3:-1] == [f"--runner={DASK_RUNNER}",
                               "--dask_client_address=tcp://127.0.0.1:8786"]


@pytest.mark.parametrize("flags, named", [(["--beam-runner", "spark"], "--beam-runner"),
                                          (["--dask-workers", "0"], "--dask-workers")])
def test_dask_flags_out_of_range_are_refused(flags, named, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--output", str(tmp_path)] + flags)
    assert exited.value.code == 2 and named in capsys.readouterr().err


def test_dask_settings_are_checked_in_the_config():
    with pytest.raises(ValueError, match="beam_runner must be one of direct, dask"):
        PipelineConfig(beam_runner="spark")
    with pytest.raises(ValueError, match="dask_workers must be at least 1"):
        PipelineConfig(dask_workers=0)
