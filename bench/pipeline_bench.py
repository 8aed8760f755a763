"""Times a cold pipeline run per component, with peak memory and the eval metrics; then
`recsys run` with nothing new, and `recsys run` after one new weekly span.

Each run is a fresh output folder in a fresh process (no cache, no warm imports beyond what a
user's `recsys run` has). Writes bench/results/pipeline.json and pipeline.md with the medians.

Usage: python -m bench.pipeline_bench --data DIR [--runs 3] [--config FILE]
"""

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional

from bench.common import machine, recsys_run, write_report
from bench.serving_latency import known_users, measure
from bench.weekly_spans import weekly_batches, write_first_span, write_ratings
from pipeline.memory import PeakMemory

# The reference the performance targets are set against: a naive TFX 1.16 pipeline of the same
# components on ML-100K, on this machine kind (seconds), and the targets.
NAIVE_SECONDS = {"FileBasedExampleGen": 27, "StatisticsGen": 10, "Transform": 47, "Trainer": 39,
                 "Evaluator": 41}
NAIVE_TOTAL_SECONDS, TARGET_TOTAL_SECONDS = 165, 60
NAIVE_EXAMPLES_PER_SECOND, TARGET_EXAMPLES_PER_SECOND = 9500, 100_000
TARGET_NO_NEW_DATA_SECONDS, TARGET_NEW_SPAN_SECONDS = 15, 45
LATENCY_TARGETS = {"one_user_p50_ms": ("one user, p50 (ms)", 1.5, 4.0),
                   "one_user_p99_ms": ("one user, p99 (ms)", 5.0, None),
                   "all_users_seconds": ("all users in one batch (s)", 0.1, None)}


def timed_run(data_dir: str, config_file: str, output_dir: str, beam_args=(),
              batch_users=None, overrides=None):
    """Runs the pipeline in this process: (seconds and peak MB per component, metrics,
    `recommend` latency — the batch call with batch_users users, default all — and the
    Trainer's record; the config it ran). overrides: settings over the config file's (e.g.
    beam_runner: dask, whose local cluster this process starts, as `recsys run` does)."""
    from pipeline.cli import _process_environment

    _process_environment(verbose=False)
    start = time.monotonic()
    with PeakMemory() as memory:
        from pipeline import heap

        with heap.long_lived(freeze=True):  # as `recsys run` does (pipeline/cli.py, main)
            from pipeline.config import load_config
        from pipeline import local_runner
        from pipeline.on_dask.cluster import dask_cluster
        from pipeline.results import latest_run_result

        config = load_config(config_file, data_dir=data_dir, output_dir=output_dir,
                             **(overrides or {})).with_beam_args(beam_args)
        imports = time.monotonic() - start

        def on_event(component, state, _seconds):
            memory.start(component if state == "running" else "between")

        with dask_cluster(config):
            seconds = local_runner.run(config, on_event)
    total = time.monotonic() - start
    result = latest_run_result(config)
    latency = {}
    if result.pushed_dir:
        latency = measure(result.pushed_dir, known_users(config.raw_folders[0]),
                          batch_users=batch_users)
    return {"seconds": seconds, "imports_seconds": imports, "total_seconds": total,
            "peak_mb": memory.peaks, "own_peak_mb": memory.own_peaks,
            "largest_child_peak_mb": memory.child_peaks, "metrics": result.metrics,
            "blessed": result.blessed,
            "recommend_latency": latency, "training": _training_record(config)}, config


def one_run(data_dir: str, config_file: str, output_dir: str) -> Dict[str, object]:
    """A cold run (timed_run), the towers alone on its data, then `recsys run` with nothing
    new and after a new span."""
    report, config = timed_run(data_dir, config_file, output_dir)
    report["towers_alone"] = towers_alone(config)
    report["no_new_data_seconds"] = _no_new_data_run(config, data_dir, config_file)
    report["new_span"] = _new_span_run(data_dir, config_file, output_dir)
    return report


def _training_record(config) -> Optional[Dict[str, object]]:
    """The Trainer's record of the towers' epochs, with throughput: every epoch (the first
    traces the step; the first few share the cores with the item autoencoder, which fits
    beside them) and the steady state (the median of the epochs after the first that ran
    alone, or of all of those if none did); None for the
    models without towers (wals, content, popularity), which write none."""
    from components.training.trainer import TRAINING_FILE
    from pipeline.results import open_store

    [model_run] = open_store(config).get_artifacts_by_type("ModelRun")
    path = os.path.join(model_run.uri, TRAINING_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return with_throughput(json.load(handle))


def towers_alone(config) -> Optional[Dict[str, object]]:
    """The Trainer's run_fn again on the run's examples and Transform graph, with the blended
    models off (no EASE before the towers, no autoencoder beside them): the towers' own training
    record, with throughput; None unless the run trained the hybrid."""
    import glob

    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts

    from components.training.trainer import TRAINING_FILE, run_fn
    from pipeline.pipeline import EXAMPLE_GEN_ID
    from pipeline.results import latest_artifact, open_store

    if config.training.model != "hybrid":
        return None
    store = open_store(config)
    # A cold run of unspanned data: ExampleGen's one output is what the Trainer read.
    stored = latest_artifact(store, "Examples", EXAMPLE_GEN_ID)
    examples = standard_artifacts.Examples()
    examples.uri = stored.uri
    examples.split_names = stored.properties["split_names"].string_value
    examples.set_string_custom_property(
        "payload_format", stored.custom_properties["payload_format"].string_value)
    with tempfile.TemporaryDirectory() as scratch:
        run_fn(FnArgs(
            train_files=glob.glob(os.path.join(examples.uri, "Split-train", "*")),
            transform_output=latest_artifact(store, "TransformGraph").uri,
            data_accessor=DataAccessor(
                tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
                    [examples], []),
                record_batch_factory=None, data_view_decode_fn=None),
            custom_config={**dataclasses.asdict(config.training), "autoencoder_share": 0.0,
                           "item_item_weight": 0.0},
            serving_model_dir=os.path.join(scratch, "serving"), model_run_dir=scratch))
        with open(os.path.join(scratch, TRAINING_FILE)) as handle:
            return with_throughput(json.load(handle))


def with_throughput(record: Dict[str, object]) -> Dict[str, object]:
    """The record with examples/s over every epoch and in the steady state."""
    epochs = record["epoch_seconds"]
    # Not the first: it traces the step.
    after_first = list(zip(epochs[1:], record["epoch_starts"][1:]))
    alone = [seconds for seconds, start in after_first if start >= record["blended_models_seconds"]]
    steady = alone or [seconds for seconds, _ in after_first]
    return {**record,
            "examples_per_second": record["examples"] * len(epochs) / sum(epochs),
            "steady_examples_per_second": (
                record["examples"] / statistics.median(steady) if len(epochs) > 1 else None)}


def _new_span_run(data_dir: str, config_file: str, scratch: str) -> Dict[str, object]:
    """The data cut at its last week: everything before as span 0, run once (untimed); then
    the last week ingested as span 1 and `recsys run` timed: the retraining a week brings."""
    from data import raw_format as R
    from data.ingest import ingest
    from pipeline.config import load_config
    from pipeline.results import latest_run_result

    weeks = weekly_batches(R.read_table(data_dir, R.RATINGS_FILE))
    spans_dir, output = os.path.join(scratch, "spans"), os.path.join(scratch, "spans-output")
    earlier = [rating for week in weeks[:-1] for rating in week]
    write_first_span(data_dir, spans_dir, earlier)
    recsys_run(spans_dir, output, config_file)
    ingest(spans_dir, write_ratings(os.path.join(scratch, "last-week.csv"), weeks[-1]))
    seconds, printed = recsys_run(spans_dir, output, config_file)
    if "Pipeline finished" not in printed:
        raise RuntimeError(f"expected a run that trains the new span, got: {printed[-500:]}")
    components = {name: float(took) for name, took in
                  re.findall(r"\] (\S+) done in ([\d.]+) s", printed)}
    blessed = latest_run_result(load_config(config_file, data_dir=spans_dir,
                                            output_dir=output)).blessed
    return {"seconds": seconds, "span_ratings": len(weeks[-1]), "earlier_ratings": len(earlier),
            "components": components, "blessed": blessed}


def _no_new_data_run(config, data_dir: str, config_file: str) -> float:
    """Wall time of `recsys run` in a fresh process right after this run (recorded as the
    CLI records it): it finds nothing new and trains nothing."""
    from pipeline.run_record import record_run, run_key

    record_run(config, run_key(config))
    seconds, printed = recsys_run(data_dir, config.output_dir, config_file)
    if "No new data since the last run" not in printed:
        raise RuntimeError(f"expected a run with nothing new, got: {printed[-500:]}")
    return seconds


def _median_table(runs) -> Dict[str, Dict[str, float]]:
    components = list(runs[0]["seconds"])
    return {c: {"seconds": statistics.median(r["seconds"][c] for r in runs),
                "peak_mb": statistics.median(r["peak_mb"].get(c, 0.0) for r in runs)}
            for c in components}


def _median_latency(runs) -> Dict[str, float]:
    measured = [r["recommend_latency"] for r in runs if r.get("recommend_latency")]
    return {key: statistics.median(m[key] for m in measured)
            for key in measured[0]} if measured else {}


def _yes_no(flags) -> str:
    """Each run's yes or no, in order ("–" where not recorded)."""
    return " / ".join({True: "yes", False: "no"}.get(flag, "–") for flag in flags or [None])


def markdown(report) -> str:
    lines = [f"Pipeline benchmark on {report['data']} — {report['runs']} cold runs, medians",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, "
             f"{report['machine']['memory_gb']} GB, Python {report['machine']['python']}",
             "", "| component | wall time (s) | naive TFX (s) | peak memory (MB) | "
                 "after one new span (s) |",
             "|---|---:|---:|---:|---:|"]
    new_span = report.get("new_span_components", {})
    for component, row in report["components"].items():
        naive = NAIVE_SECONDS.get(component, "")
        peak = f"{row['peak_mb']:.0f}" if row["peak_mb"] else "–"
        after = f"{new_span[component]:.1f}" if component in new_span else ""
        lines.append(f"| {component} | {row['seconds']:.1f} | {naive} | {peak} | {after} |")
    lines.append(f"| imports and setup | {report['imports_seconds']:.1f} | | | |")
    lines.append(f"| **total** (target ≤ {TARGET_TOTAL_SECONDS} s) | "
                 f"**{report['total_seconds']:.1f}** | {NAIVE_TOTAL_SECONDS} | "
                 f"**{report['peak_mb']:.0f}** | |")
    if "no_new_data_seconds" in report:
        lines.append(f"| run with no new data, `recsys run` (target ≤ "
                     f"{TARGET_NO_NEW_DATA_SECONDS} s) | "
                     f"{report['no_new_data_seconds']:.1f} | | | |")
    if "new_span_seconds" in report:
        lines.append(f"| run after one new weekly span ({report['new_span_ratings']:,} ratings), "
                     f"`recsys run` (target ≤ {TARGET_NEW_SPAN_SECONDS} s); warm start "
                     f"blessed: {_yes_no(report.get('new_span_blessed'))} | "
                     f"{report['new_span_seconds']:.1f} | | | |")
    training = report.get("training")
    if training:
        lines += ["", f"Hybrid towers' training, {training['examples']:,} examples, batch "
                      f"{training['batch_size']} (median over the runs)", "",
                  "| examples/s | measured | target | naive TFX |", "|---|---:|---:|---:|",
                  "| in the pipeline, every epoch (the first traces the step; the "
                  "autoencoder fits beside them) | "
                  f"{training['examples_per_second']:,.0f} | | "
                  f"{NAIVE_EXAMPLES_PER_SECOND:,} |",
                  "| in the pipeline, steady state (median epoch after the first; those "
                  "after the autoencoder finished, where any were) | "
                  f"{training['steady_examples_per_second']:,.0f} | | |",
                  "| the towers alone, steady state (the Trainer again on the run's data with "
                  "the autoencoder and EASE off) | "
                  f"{training['alone_steady_examples_per_second']:,.0f} | ≥ "
                  f"{TARGET_EXAMPLES_PER_SECOND:,} | |"]
    latency = report.get("recommend_latency") or {}
    if latency:
        lines += ["", f"`recommend` top-10 in process, {latency['users']:,} users "
                      "(median over the runs)", "",
                  "| call | measured | target | naive TFX |", "|---|---:|---:|---:|"]
        for key, (label, target, naive) in LATENCY_TARGETS.items():
            lines.append(f"| {label} | {latency[key]:.3g} | ≤ {target} | {naive or ''} |")
    lines += ["", "| metric (eval split) | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in report["metrics"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config")
    parser.add_argument("--one-run", metavar="OUTPUT_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = os.path.abspath(args.data)
    if args.one_run:
        with tempfile.TemporaryDirectory() as output:
            report = one_run(data_dir, args.config, output)
        with open(args.one_run, "w") as handle:
            json.dump(report, handle)
        return 0
    runs = []
    for index in range(args.runs):
        with tempfile.NamedTemporaryFile(suffix=".json") as result:
            command = [sys.executable, "-m", "bench.pipeline_bench", "--data", data_dir,
                       "--one-run", result.name]
            command += ["--config", args.config] if args.config else []
            subprocess.run(command, check=True)
            with open(result.name) as handle:
                runs.append(json.load(handle))
        print(f"run {index + 1}/{args.runs}: {runs[-1]['total_seconds']:.1f} s", flush=True)
    report = {
        "data": data_dir, "runs": args.runs, "machine": machine(),
        "components": _median_table(runs),
        "imports_seconds": statistics.median(r["imports_seconds"] for r in runs),
        "total_seconds": statistics.median(r["total_seconds"] for r in runs),
        "peak_mb": statistics.median(max(r["peak_mb"].values()) for r in runs),
        "metrics": runs[-1]["metrics"], "all_runs": runs,
        "recommend_latency": _median_latency(runs),
        "no_new_data_seconds": statistics.median(r["no_new_data_seconds"] for r in runs),
        "new_span_seconds": statistics.median(r["new_span"]["seconds"] for r in runs),
        "new_span_ratings": runs[0]["new_span"]["span_ratings"],
        "new_span_blessed": [r["new_span"].get("blessed") for r in runs],
        "new_span_components": {
            component: statistics.median(r["new_span"]["components"].get(component, 0.0)
                                         for r in runs)
            for component in runs[0]["new_span"]["components"]},
        "training": runs[0]["training"] and {
            "examples": runs[0]["training"]["examples"],
            "batch_size": runs[0]["training"]["batch_size"],
            **{key: statistics.median(r["training"][key] for r in runs)
               for key in ("examples_per_second", "steady_examples_per_second")},
            "alone_steady_examples_per_second": statistics.median(
                r["towers_alone"]["steady_examples_per_second"] for r in runs)},
    }
    write_report("pipeline", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
