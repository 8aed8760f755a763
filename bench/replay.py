"""`make replay`: continuous retraining replayed on MovieLens-100K, week by week.

The ratings are cut into weeks by timestamp; the weeks holding the first 60% of the ratings
become span 0, and every later week is ingested (`recsys ingest`) and run through the real
pipeline twice: warm-started from the model in service, and retrained cold on the same window
(`warm_start: false`), each in its own output folder. Each run's trained model is scored on
the following week's ratings (train through week t, test on week t+1): RMSE through
`serving_default`, NDCG@10 through `recommend` over the catalog, seen items excluded. Writes
bench/results/replay.json, replay.md and replay.png.

Usage: python -m bench.replay --data DIR [--weeks N] [--work DIR]
"""

import argparse
import dataclasses
import os
import shutil
import sys
import time
from typing import Dict

from bench.common import RESULTS_DIR, machine, write_report
from bench.scoring import evaluate
from bench.weekly_spans import weekly_batches, write_first_span, write_ratings


def _latest_model(config) -> str:
    from pipeline.results import open_store

    trained = max(open_store(config).get_artifacts_by_type("Model"), key=lambda a: a.id)
    return os.path.join(trained.uri, "Format-Serving")


def _score(config, next_week_dir: str) -> Dict[str, float]:
    metrics = evaluate(_latest_model(config), next_week_dir, cold_users=False)
    return {"rmse": metrics["rmse"], "ndcg@10": metrics["ndcg@10"]}


def _run(config) -> Dict[str, object]:
    from pipeline import local_runner
    from pipeline.results import latest_run_result

    start = time.monotonic()
    seconds = local_runner.run(config)
    result = latest_run_result(config)
    return {"seconds": time.monotonic() - start, "trainer_seconds": seconds.get("Trainer"),
            "blessed": result.blessed,
            "pushed": os.path.basename(result.pushed_dir) if result.pushed_dir else None}


def markdown(report) -> str:
    lines = [f"Replay of MovieLens-100K, one span a week — {report['machine']['cpu']}, "
             f"{report['machine']['cores']} cores", "",
             "| week | new ratings | warm RMSE | cold RMSE | warm NDCG@10 | cold NDCG@10 | "
             "warm s | cold s | warm blessed / pushed | cold blessed / pushed |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for row in report["weeks"]:
        cells = []
        for key, pattern in (("rmse", "{:.4f}"), ("ndcg@10", "{:.4f}"), ("seconds", "{:.0f}")):
            cells += [pattern.format(row[k][key]) if key in row[k] else "stopped"
                      for k in ("warm", "cold")]
        for kind in ("warm", "cold"):
            run = row[kind]
            cells.append("stopped by the drift gate" if "stopped" in run else
                         f"{'yes' if run['blessed'] else 'no'} / {run['pushed'] or '-'}")
        lines.append(f"| {row['span']} | {row['ratings']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(report, path: str) -> str:
    """One panel per figure of the table, warm against cold by week; a hollow marker is a run
    the release gate did not bless (its model was not pushed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels = (("rmse", "RMSE on the next week"), ("ndcg@10", "NDCG@10 on the next week"),
              ("seconds", "run seconds"))
    figure, axes = pyplot.subplots(len(panels), 1, figsize=(8, 9), sharex=True)
    for axis, (key, title) in zip(axes, panels):
        for kind, color in (("warm", "tab:blue"), ("cold", "tab:orange")):
            runs = [(row["span"], row[kind]) for row in report["weeks"] if key in row[kind]]
            axis.plot([week for week, _ in runs], [run[key] for _, run in runs], color=color,
                      label=f"{kind} start")
            for week, run in runs:
                axis.plot(week, run[key], "o", color=color,
                          markerfacecolor=color if run["blessed"] else "white")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend()
    axes[-1].set_xlabel("week (span) trained through; hollow marker: not blessed, not pushed")
    figure.suptitle(f"Replay of MovieLens-100K — {report['machine']['cpu']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="MovieLens-100K as a raw folder")
    parser.add_argument("--weeks", type=int, default=0,
                        help="replay only this many weeks after the bootstrap (0: all)")
    parser.add_argument("--work", default=None, help="scratch folder (default DATA-replay)")
    args = parser.parse_args(argv)
    from pipeline.cli import _process_environment

    _process_environment(verbose=False)  # as `recsys run`
    from components.validation_gate.anomalies import DataAnomaliesError
    from data import raw_format as R
    from data.ingest import ingest
    from pipeline.config import load_config

    data = os.path.abspath(args.data)
    work = os.path.abspath(args.work or f"{data}-replay")
    shutil.rmtree(work, ignore_errors=True)
    weeks = weekly_batches(R.read_table(data, R.RATINGS_FILE))
    last = len(weeks) - 1 if not args.weeks else min(len(weeks) - 1, args.weeks)
    spans_dir = os.path.join(work, "data")
    write_first_span(data, spans_dir, weeks[0])
    configs = {"warm": load_config(data_dir=spans_dir, output_dir=os.path.join(work, "warm"))}
    configs["cold"] = dataclasses.replace(
        configs["warm"], output_dir=os.path.join(work, "cold"),
        training=dataclasses.replace(configs["warm"].training, warm_start=False))
    print(f"bootstrap: {len(weeks[0]):,} ratings; {len(weeks) - 1} weeks follow, replaying "
          f"{last}", flush=True)
    for config in configs.values():
        _run(config)
    rows = []
    for span in range(1, last + 1):
        batch = write_ratings(os.path.join(work, f"week-{span}.csv"), weeks[span])
        ingest(spans_dir, batch)
        next_week = os.path.join(work, "next", "eval")
        os.makedirs(next_week, exist_ok=True)
        for name in (R.USERS_FILE, R.ITEMS_FILE):
            shutil.copy(os.path.join(data, name), next_week)
        following = weeks[span + 1] if span + 1 < len(weeks) else []
        row = {"span": span, "ratings": len(weeks[span]), "next_ratings": len(following)}
        for kind, config in configs.items():
            try:
                row[kind] = _run(config)
            except DataAnomaliesError as error:  # the drift gate stopped this week's run
                row[kind] = {"stopped": str(error)}
                continue
            if following:
                write_ratings(os.path.join(next_week, R.RATINGS_FILE), following)
                row[kind].update(_score(config, os.path.dirname(next_week)))
        rows.append(row)
        print(f"week {span}: warm {row['warm']}  cold {row['cold']}", flush=True)
    report = {"data": data, "machine": machine(), "bootstrap_ratings": len(weeks[0]),
              "weeks": [r for r in rows if r["next_ratings"]]}
    write_report("replay", report, markdown(report))
    print("plot:", plot(report, os.path.join(RESULTS_DIR, "replay.png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
