"""ExampleGen alone on a data folder: the project's executor, as the pipeline configures it
(hash split 4:1, the project's setup.py as the workers' package), on Beam's DirectRunner in
either mode; wall time and peak memory (this process and its workers) per run, and whether
every rating was written (the executor's own count, components/example_gen/example_count.py).

Usage: python -m bench.example_gen_bench [--data datasets/ml-100k] [--runs 3]
           [--mode in_memory|multi_processing]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

from pipeline.config import PROJECT_DIR
from pipeline.memory import PeakMemory

MODES = ("in_memory", "multi_processing")


def pipeline_config(data_dir: str, mode: str):
    """The pipeline's settings for this data folder and runner mode."""
    from pipeline.config import PipelineConfig

    workers = 1 if mode == "in_memory" else os.cpu_count() or 1
    return PipelineConfig(data_dir=data_dir, beam_args=(
        f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"))


def one_run(data_dir: str, mode: str) -> dict:
    """Seconds, peak MB and the examples written, or the executor's error if it failed."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.example_gen.example_count import count_examples
    from components.example_gen.executor import Executor, split_uris_by_ratings_file
    from pipeline.pipeline import example_splits

    output = tempfile.mkdtemp(prefix="example-gen-bench-")
    examples = standard_artifacts.Examples()
    examples.uri = output
    config = pipeline_config(data_dir, mode)
    properties = {"input_base": data_dir,
                  "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
                  "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
                  **{key: proto_utils.proto_to_json(value)
                     for key, value in example_splits(config).items()}}
    executor = Executor(BaseBeamExecutor.Context(
        beam_pipeline_args=list(config.beam_pipeline_args)))
    report = {"error": None}
    try:
        with PeakMemory() as memory:
            memory.start("ExampleGen")
            start = time.monotonic()
            try:
                executor.Do({}, {"examples": [examples]}, properties)
            except Exception as error:  # noqa: BLE001 - reported, not hidden: the run failed
                report["error"] = f"{type(error).__name__}: {error}"
            report["seconds"] = time.monotonic() - start
        report["peak_mb"] = memory.peaks["ExampleGen"]
        report["examples"] = sum(count_examples(uri) for uris in split_uris_by_ratings_file(
            properties, examples).values() for uri in uris if os.path.isdir(uri))
    finally:
        shutil.rmtree(output, ignore_errors=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(PROJECT_DIR, "datasets", "ml-100k"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mode", choices=MODES, default="in_memory")
    args = parser.parse_args(argv)
    from components.example_gen.example_count import count_rows
    from data import raw_format as R

    ratings = count_rows(os.path.join(args.data, R.RATINGS_FILE))
    runs = []
    for index in range(args.runs):
        run = one_run(args.data, args.mode)
        runs.append(run)
        print(f"run {index + 1}: {run['seconds']:.1f} s, peak {run['peak_mb'] / 1024:.2f} GB, "
              f"{run['examples']:,} examples of {ratings:,} ratings"
              + (f" — failed: {run['error']}" if run["error"] else ""))
    print(f"ExampleGen on {args.data}, {args.mode} DirectRunner: median "
          f"{statistics.median(r['seconds'] for r in runs):.1f} s, peak "
          f"{max(r['peak_mb'] for r in runs) / 1024:.2f} GB")
    return 1 if any(r["error"] for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
