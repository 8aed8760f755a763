"""`make bench-quality`: every model on every protocol, trained as a user trains it.

For each protocol (bench/protocols.py) and model kind, `recsys run --data <protocol>/train` in a
fresh process, into a fresh output folder: the whole pipeline, its own train/eval hash split,
gate, refit and push. The pushed model (output/serving/<newest>) is then scored through its
serving signatures on the protocol's test part: RMSE/MAE through `serving_default`; NDCG@10,
Precision@10, Recall@10 and MAP through `recommend` or, for held-out cold-start users,
`recommend_with_features`; and how many top-10 slots went to movies the user had rated in the
training part. Beside them, EASE (bench/ease_baseline.py), its λ chosen on a validation slice.
Writes bench/results/quality.json and quality.md.

Usage: python -m bench.quality_bench --data DIR [--models ...] [--protocols ...] [--config F]
                                     [--validation]
With --validation the same runs score on a validation slice carved from each protocol's
training part (bench/protocols.py) and write quality-validation.*: settings are chosen there.
"""

import argparse
import dataclasses
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Dict

import yaml

from bench import cold_scoring, ease_baseline
from bench.common import machine, recsys_run, write_report
from bench.protocols import write_protocols, write_validation_protocols
from bench.scoring import evaluate

PROTOCOLS = ("u1", "u2", "u3", "u4", "u5", "stratified", "stratified_seed2", "leave_last_10",
             "cold_start", "temporal", "cold_items", "few_answers")
# New movies and new users' few answers: scored by bench/cold_scoring.py, with their anchors.
COLD = ("cold_items", "few_answers")
# The hybrid's gate model (trained on ExampleGen's train split only, before the refit): what
# the pushed model would be without the refit, its training-part items dropped when scored.
GATE = "hybrid, no refit"
RANKED = ("stratified", "stratified_seed2", "leave_last_10", "cold_start", "temporal")
MODELS = ("hybrid", "wals", "content", "popularity")


def bench_settings(config_file: str, model: str) -> dict:
    """The config file's settings for one model kind. Every kind is pushed, so that each is
    scored (a first run has no model in service to beat; the gate's absolute floors would
    stop popularity and content, whose RMSE is above max_rmse)."""
    settings = {}
    if config_file:
        with open(config_file, encoding="utf-8") as handle:
            settings = yaml.safe_load(handle) or {}
    settings.setdefault("training", {})["model"] = model
    settings.setdefault("evaluation", {}).update(max_rmse=10.0, min_ranking=0.0)
    return settings


def run_protocol(protocol: str, protocol_dir: str, work_dir: str, models, config_file):
    """`recsys run` of every model on one protocol's training part; metrics per model."""
    from pipeline.serving import latest_model_dir

    results = {}
    for model in models:
        output = os.path.join(work_dir, protocol, model)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            yaml.safe_dump(bench_settings(config_file, model), handle)
        try:
            seconds, printed = recsys_run(os.path.join(protocol_dir, "train"), output,
                                          handle.name)
        finally:
            os.remove(handle.name)
        if "Pipeline finished" not in printed:
            raise RuntimeError(f"{protocol} {model}: expected a run that pushes, got: "
                               f"{printed[-500:]}")
        scored = {model: latest_model_dir(os.path.join(output, "serving"))}
        if protocol in COLD:
            results.update(_score_cold(protocol, model, scored[model], protocol_dir, seconds))
            continue
        if model == "hybrid":
            [scored[GATE]] = glob.glob(os.path.join(
                output, "pipeline", "Trainer", "model", "*", "Format-TFMA"))
        for name, model_dir in scored.items():
            metrics = evaluate(model_dir, protocol_dir, cold_users=protocol == "cold_start",
                               drop_rated=name == GATE)
            metrics["run_seconds"] = seconds
            results[name] = metrics
            print(f"{protocol:16s} {name:10s} RMSE {metrics['rmse']:.4f}  "
                  f"NDCG@10 {metrics['ndcg@10']:.4f}  already rated "
                  f"{metrics['already_rated_in_top_k']}  run {seconds:.1f} s", flush=True)
    return results


def _score_cold(protocol: str, model: str, model_dir: str, protocol_dir: str, seconds: float):
    if protocol == "cold_items":
        scored = {model: cold_scoring.score_cold_items(model_dir, protocol_dir)}
    else:
        scored = {model: cold_scoring.score_few_answers(model_dir, protocol_dir)}
        if model == "hybrid":
            scored["hybrid, demographics only"] = cold_scoring.score_few_answers(
                model_dir, protocol_dir, demographics_only=True)
    for name, metrics in scored.items():
        metrics["run_seconds"] = seconds
        print(f"{protocol:16s} {name:10s} NDCG@10 {metrics['ndcg@10']:.4f}  "
              f"Recall@10 {metrics['recall@10']:.4f}  run {seconds:.1f} s", flush=True)
    return scored


def cold_anchors(folders: Dict[str, str], work: str, hybrid_regularization: float):
    """The cold protocols' anchors, in the same run: genre popularity and LightFM for new
    movies; EASE folded in (λ tuned on a validation slice, and at the hybrid's) for new
    users."""
    anchors: Dict[str, Dict[str, dict]] = {}
    if "cold_items" in folders:
        anchors["genre popularity"] = {
            "cold_items": cold_scoring.genre_popularity(folders["cold_items"])}
        anchors["LightFM (WARP, id + genres + decade)"] = {
            "cold_items": cold_scoring.lightfm(folders["cold_items"])}
    if "few_answers" in folders:
        validation = write_validation_protocols(
            {"few_answers": folders["few_answers"]}, os.path.join(work, "validation", "data"))
        anchors["EASE folded in, λ tuned"] = {"few_answers": cold_scoring.ease_fold_in_tuned(
            folders["few_answers"], validation["few_answers"])}
        anchors[f"EASE folded in at the hybrid's λ {hybrid_regularization:g}"] = {
            "few_answers": cold_scoring.ease_fold_in(folders["few_answers"],
                                                     hybrid_regularization)}
    return anchors


def cold_markdown(report) -> str:
    """The new movies' and new users' table: the models, then the anchors."""
    results, anchors = report["results"], report.get("cold_anchors", {})
    columns = [("cold_items", key) for key in ("ndcg@10", "recall@10", "auc",
                                                 "cold_share_of_top_10")]
    columns += [("few_answers", key) for key in ("ndcg@10", "recall@10")]
    columns = [(p, key) for p, key in columns if p in results]
    if not columns:
        return ""
    names = list(dict.fromkeys(name for p in COLD if p in results for name in results[p]))
    lines = ["", "New movies (cold_items: held-out movies ranked among themselves; their share "
             "of the users' ordinary top 10) and new users (few_answers: first "
             f"{cold_scoring.FIRST_ANSWERS} ratings given, the rest ranked):", "",
             "| model | " + " | ".join(f"{p} {key}" for p, key in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, by_protocol in [(n, results) for n in names] + [
            (n, {p: {n: v} for p, v in a.items()}) for n, a in anchors.items()]:
        lines.append(f"| {name} | " + " | ".join(
            _cell(by_protocol.get(p, {}).get(name, {}).get(key)) for p, key in columns) + " |")
    if "cold_items" in results:
        share = next(iter(results["cold_items"].values()))["cold_share_of_catalog"]
        lines += ["", f"The held-out movies are {share:.1%} of the catalog."]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return "" if value is None else f"{value:.4f}"


def markdown(report) -> str:
    results, models = report["results"], report["models"]
    cold_table = cold_markdown(report)
    results = {p: r for p, r in results.items() if p not in COLD}
    if not results:
        return cold_table
    if "hybrid" in models:
        models = [*models[:models.index("hybrid") + 1], GATE,
                  *models[models.index("hybrid") + 1:]]
    baselines = report.get("baselines", {})
    scored_on = ("validation slices of each protocol's training part"
                 if report.get("validation") else "each protocol's test part")
    machine = report["machine"]
    lines = [f"Quality benchmark on MovieLens-100K, scored on {scored_on}: each model trained "
             f"by `recsys run` on the protocol's training part, scored through the pushed "
             f"model's signatures — {machine['cpu']}, {machine['cores']} cores, "
             f"Python {machine['python']}", ""]

    def metric(protocol, model, key):
        return results.get(protocol, {}).get(model, {}).get(key)

    folds = [p for p in PROTOCOLS[:5] if p in results]
    rating_columns = [("u1 RMSE", lambda m: metric("u1", m, "rmse")),
                      ("u1 MAE", lambda m: metric("u1", m, "mae"))]
    if len(folds) == 5:
        rating_columns.append(("u1–u5 mean RMSE", lambda m: statistics.mean(
            metric(p, m, "rmse") for p in folds)))
    rating_columns += [("temporal RMSE", lambda m: metric("temporal", m, "rmse")),
                       ("cold-start RMSE", lambda m: metric("cold_start", m, "rmse"))]
    lines += ["| model | " + " | ".join(title for title, _ in rating_columns) + " |",
              "|---" * (len(rating_columns) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(_cell(get(m)) for _, get in rating_columns) + " |"
              for m in models]

    ranked = [p for p in RANKED if p in results]
    columns = [(f"{p} NDCG@10", p, "ndcg@10") for p in ranked]
    if "stratified" in results:
        columns[1:1] = [(f"stratified {key}", "stratified", key)
                        for key in ("precision@10", "recall@10", "map")]
    lines += ["", "| model | " + " | ".join(title for title, _, _ in columns)
              + " | top-10 slots already rated | slowest run (s) |",
              "|---" * (len(columns) + 3) + "|"]
    for m in models:
        rated = sum(metric(p, m, "already_rated_in_top_k") or 0 for p in results)
        slowest = max(metric(p, m, "run_seconds") for p in results)
        lines.append(f"| {m} | " + " | ".join(_cell(metric(p, m, key)) for _, p, key in columns)
                     + f" | {rated} | {slowest:.1f} |")
    for name, by_protocol in baselines.items():
        lines.append(f"| {name} | " + " | ".join(
            _cell(by_protocol.get(p, {}).get(key)) for _, p, key in columns) + " | 0 | |")
    if "EASE, λ tuned" in baselines:
        chosen = ", ".join(f"{p} {v['lambda']:g}" for p, v in baselines["EASE, λ tuned"].items())
        lines += ["", f"EASE's λ, chosen on each protocol's validation slice: {chosen}."]
    return "\n".join(lines) + "\n" + cold_table


def ease_baselines(folders: Dict[str, str], work: str, hybrid_regularization: float):
    """EASE tuned on validation slices, and at the hybrid's own λ, on every ranked protocol
    with known users (EASE ranks from a user's history)."""
    ranked = {p: folder for p, folder in folders.items() if p in RANKED and p != "cold_start"}
    validation = write_validation_protocols(ranked, os.path.join(work, "validation", "data"))
    return {"EASE, λ tuned": {p: ease_baseline.tuned(ranked[p], validation[p]) for p in ranked},
            f"EASE at the hybrid's λ {hybrid_regularization:g}": {
                p: ease_baseline.score(ranked[p], hybrid_regularization) for p in ranked}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--config")
    parser.add_argument("--work", default=None, help="working folder (default: beside data)")
    parser.add_argument("--validation", action="store_true",
                        help="score on validation slices of each protocol's training part "
                             "(to choose settings; the test parts are not read)")
    args = parser.parse_args(argv)
    from pipeline.cli import _process_environment

    _process_environment(verbose=False)
    from pipeline.config import load_config

    data_dir = os.path.abspath(args.data)
    work = os.path.abspath(args.work or data_dir.rstrip("/") + "-protocols")
    protocols = args.protocols.split(",")
    models = args.models.split(",")
    folders = write_protocols(data_dir, os.path.join(work, "data"), protocols)
    baselines, anchors = {}, {}
    if args.validation:
        work = os.path.join(work, "validation")
        folders = write_validation_protocols(folders, os.path.join(work, "data"))
    else:
        regularization = load_config(args.config).training.item_item_regularization
        warm = {p: folder for p, folder in folders.items() if p not in COLD}
        baselines = ease_baselines(warm, work, regularization) if warm else {}
        anchors = cold_anchors(folders, work, regularization)
    start = time.monotonic()
    runs = os.path.join(work, "runs")
    shutil.rmtree(runs, ignore_errors=True)  # every run a first one, as a new user's
    results = {p: run_protocol(p, folders[p], runs, models, args.config) for p in protocols}
    report = {"data": data_dir, "models": models, "machine": machine(), "results": results,
              "baselines": baselines, "cold_anchors": anchors, "validation": args.validation,
              "training": dataclasses.asdict(load_config(args.config).training),
              "wall_seconds": time.monotonic() - start}
    write_report("quality-validation" if args.validation else "quality", report,
                 markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
