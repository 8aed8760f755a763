"""The whole pipeline on synthetic data of MovieLens-1M's and -10M's shapes, on one machine:
wall time, peak memory (Beam's worker processes included) and `recommend` latency per size.

Each size is one cold run in a fresh process per runner: the DirectRunner in multi-processing
mode (one worker per core), and `--beam-runner dask` on a local Dask cluster of one worker
process per core (pipeline/on_dask/). The data comes from data/synthetic.py (same skew at
every size) and is generated once into datasets/synthetic-<size>/. Writes
bench/results/scale.json and scale.md.

Usage: python -m bench.scale_bench [--sizes 1m,10m] [--runners direct,dask] [--config FILE]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict

from bench.common import machine, write_report
from bench.pipeline_bench import LATENCY_TARGETS, timed_run

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (users, items, ratings) of MovieLens-1M and -10M.
SIZES = {"1m": (6040, 3706, 1_000_209), "10m": (69_878, 10_677, 10_000_054)}
TARGET_SECONDS, TARGET_PEAK_GB = 30 * 60, 8
BATCH_USERS = 943  # the batch `recommend` call: as many users as MovieLens-100K has


RUNNERS = ("direct", "dask")


def runner_settings(runner: str):
    """(Beam args, config overrides) of a runner, one worker per core either way."""
    if runner == "dask":
        return (), {"beam_runner": "dask", "dask_workers": os.cpu_count() or 1}
    return ("--direct_running_mode=multi_processing",
            f"--direct_num_workers={os.cpu_count() or 1}"), {}


def dataset(size: str) -> str:
    from data import synthetic

    folder = os.path.join(PROJECT_DIR, "datasets", f"synthetic-{size}")
    if not os.path.exists(os.path.join(folder, "ratings.csv")):
        synthetic.generate(folder, *SIZES[size], seed=0)
    return folder


def examples_written(run) -> int:
    """The train split's examples (as the Trainer read them) plus the eval split's (as the
    Evaluator counted them)."""
    return int((run["training"] or {}).get("examples", 0)
               + run["metrics"].get("example_count", 0))


def markdown(report) -> str:
    sizes = report["sizes"]
    lines = [f"Scale on one machine — {report['machine']['cpu']}, {report['machine']['cores']} "
             f"cores, {report['machine']['memory_gb']} GB; the DirectRunner in multi-processing "
             f"mode (direct) and a local Dask cluster (dask), one worker process per core",
             "", "| | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]

    def row(label, value):
        lines.append(f"| {label} | " + " | ".join(value(r) for r in sizes.values()) + " |")

    row("ratings / users / items",
        lambda r: f"{r['ratings']:,} / {r['users']:,} / {r['items']:,}")
    row("batch `recommend` call", lambda r: f"{r['recommend_latency'].get('users', 0):,} users")
    # Every rating becomes one example of the train or the eval split: a shortfall is data the
    # runner lost (seen at 10M with the DirectRunner in multi-processing mode).
    row("examples after ExampleGen (train + eval) / ratings", lambda r: (
        f"{examples_written(r):,} / {r['ratings']:,}"))
    row(f"wall time, s (target ≤ {TARGET_SECONDS})", lambda r: f"{r['total_seconds']:.0f}")
    row("seconds per million ratings",
        lambda r: f"{r['total_seconds'] / r['ratings'] * 1e6:.0f}")
    row(f"peak memory, GB (target ≤ {TARGET_PEAK_GB})",
        lambda r: f"{max(r['peak_mb'].values()) / 1024:.1f}")
    row("peak per process, GB: `recsys run` / its largest worker", lambda r: (
        f"{max(r['own_peak_mb'].values()) / 1024:.1f} / "
        f"{max(r['largest_child_peak_mb'].values()) / 1024:.1f}"))
    for component in next(iter(sizes.values()))["seconds"]:
        row(f"{component}, s / peak GB", lambda r, c=component: (
            f"{r['seconds'].get(c, 0):.0f} / {r['peak_mb'].get(c, 0) / 1024:.1f}"))
    row("towers' training, examples/s (steady)",
        lambda r: f"{(r['training'] or {}).get('steady_examples_per_second') or 0:,.0f}")
    for key, (label, target, _) in LATENCY_TARGETS.items():
        row(f"recommend {label} (target ≤ {target})",
            lambda r, k=key: f"{r['recommend_latency'].get(k, float('nan')):.3g}")
    row("eval RMSE", lambda r: f"{r['metrics'].get('root_mean_squared_error', float('nan')):.4f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--config")
    parser.add_argument("--one-run", nargs=3, metavar=("SIZE", "RUNNER", "OUTPUT_JSON"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_run:
        size, runner, result_file = args.one_run
        beam_args, overrides = runner_settings(runner)
        with tempfile.TemporaryDirectory() as output:
            report, _ = timed_run(dataset(size), args.config, output, beam_args, BATCH_USERS,
                                  overrides)
        report.update(zip(("users", "items", "ratings"), SIZES[size]), runner=runner)
        with open(result_file, "w") as handle:
            json.dump(report, handle)
        return 0
    sizes: Dict[str, object] = {}
    for size in args.sizes.split(","):
        dataset(size)
        for runner in args.runners.split(","):
            label = f"{size} {runner}"
            with tempfile.NamedTemporaryFile(suffix=".json") as result:
                command = [sys.executable, "-m", "bench.scale_bench", "--one-run", size, runner,
                           result.name]
                command += ["--config", args.config] if args.config else []
                subprocess.run(command, check=True)
                with open(result.name) as handle:
                    sizes[label] = json.load(handle)
            print(f"{label}: {sizes[label]['total_seconds']:.0f} s", flush=True)
    report = {"machine": machine(), "sizes": sizes}
    write_report("scale", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
