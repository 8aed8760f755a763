"""`make bench-quality`: every model on every protocol, trained by the real pipeline.

For each protocol (bench/protocols.py) the pipeline runs ExampleGen → Trainer on that exact
split (presplit, train_only); each model kind is one Trainer run on the same cached Transform.
The trained SavedModel is then scored through its own serving signatures on the protocol's
test ratings: RMSE/MAE through `serving_default`; NDCG@10, Precision@10, Recall@10 and MAP
through `recommend` (seen items excluded) or, for held-out cold-start users,
`recommend_with_features`. Writes bench/results/quality.json and quality.md.

Usage: python -m bench.quality_bench --data DIR [--models ...] [--protocols ...] [--config F]
                                     [--validation]
With --validation the same runs score on a validation slice carved from each protocol's
training part (bench/protocols.py) and write quality-validation.*: settings are chosen there.
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
from typing import Dict, List

import numpy as np

PROTOCOLS = ("u1", "u2", "u3", "u4", "u5", "stratified", "cold_start", "temporal")
MODELS = ("hybrid", "wals", "content", "popularity")
K = 10
BATCH = 4096


def evaluate(model_dir: str, protocol_dir: str, cold_users: bool) -> Dict[str, float]:
    """Rating and top-k metrics of a trained model on a protocol's test ratings."""
    from components import features as F
    from components.example_gen import to_example
    from components.ranking_eval import evaluate_ranking
    from data import raw_format as R
    from pipeline.serving import Recommender

    test_dir = os.path.join(protocol_dir, "eval")
    recommender = Recommender(model_dir)
    users = {u.user_id: u for u in R.read_table(test_dir, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(test_dir, R.ITEMS_FILE)}
    test = R.read_table(test_dir, R.RATINGS_FILE)
    predicted = []
    for start in range(0, len(test), BATCH):
        predicted += recommender.predict_ratings([
            to_example(r, users[r.user_id], items[r.item_id], 1).SerializeToString()
            for r in test[start:start + BATCH]])
    errors = np.array(predicted) - np.array([r.rating for r in test])
    relevant: Dict[str, List[str]] = {}
    for r in test:
        relevant.setdefault(r.user_id, []).append(r.item_id)

    def recommend(user_ids, k):
        if not cold_users:
            return recommender.recommend(user_ids, k)
        return recommender.recommend(user_ids, k, {
            F.AGE: [users[u].age for u in user_ids],
            F.GENDER: [users[u].gender for u in user_ids],
            F.OCCUPATION: [users[u].occupation for u in user_ids],
            F.ZIP_CODE: [users[u].zip_code for u in user_ids]})

    metrics = evaluate_ranking(recommend, relevant, K)
    metrics.update(rmse=float(np.sqrt(np.mean(errors ** 2))), mae=float(np.mean(np.abs(errors))),
                   test_ratings=len(test), test_users=len(relevant))
    return metrics


def run_protocol(protocol: str, protocol_dir: str, work_dir: str, models, base_config):
    """Trains every model on one protocol through the pipeline; returns metrics per model."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    from pipeline import local_runner

    config = dataclasses.replace(base_config, data_dir=protocol_dir, presplit=True,
                                 train_only=True, output_dir=os.path.join(work_dir, protocol))
    results = {}
    for model in models:
        model_config = dataclasses.replace(
            config, training=dataclasses.replace(config.training, model=model))
        seconds = local_runner.run(model_config)
        connection = metadata_store_pb2.ConnectionConfig()
        connection.sqlite.filename_uri = model_config.metadata_path
        store = metadata_store.MetadataStore(connection)
        trained = max(store.get_artifacts_by_type("Model"), key=lambda a: a.id)
        metrics = evaluate(os.path.join(trained.uri, "Format-Serving"), protocol_dir,
                           cold_users=protocol == "cold_start")
        metrics["trainer_seconds"] = seconds.get("Trainer", float("nan"))
        results[model] = metrics
        print(f"{protocol:10s} {model:10s} RMSE {metrics['rmse']:.4f}  "
              f"NDCG@10 {metrics['ndcg@10']:.4f}  trainer {metrics['trainer_seconds']:.1f} s",
              flush=True)
    return results


def markdown(report) -> str:
    results, models = report["results"], report["models"]
    scored_on = ("validation slices of each protocol's training part"
                 if report.get("validation") else "each protocol's test part")
    lines = [f"Quality benchmark on MovieLens-100K, scored on {scored_on} — "
             f"{report['machine']['cpu']}, {report['machine']['cores']} cores", ""]
    header = ["model"]
    rows = {m: [m] for m in models}

    def column(title, values):
        header.append(title)
        for m in models:
            value = values.get(m)
            rows[m].append("" if value is None else f"{value:.4f}")

    get = lambda p, key: {m: results[p][m][key] for m in models if p in results}  # noqa: E731
    if "u1" in results:
        column("u1 RMSE", get("u1", "rmse"))
        column("u1 MAE", get("u1", "mae"))
    folds = [p for p in PROTOCOLS[:5] if p in results]
    if len(folds) == 5:
        column("u1–u5 mean RMSE", {m: statistics.mean(results[p][m]["rmse"] for p in folds)
                                   for m in models})
    if "stratified" in results:
        for key in ("ndcg@10", "precision@10", "recall@10", "map"):
            column(f"stratified {key}", get("stratified", key))
    if "cold_start" in results:
        column("cold-start NDCG@10", get("cold_start", "ndcg@10"))
        column("cold-start RMSE", get("cold_start", "rmse"))
    if "temporal" in results:
        column("temporal NDCG@10", get("temporal", "ndcg@10"))
        column("temporal RMSE", get("temporal", "rmse"))
    train_times = {m: max(results[p][m]["trainer_seconds"] for p in results) for m in models}
    header.append("max Trainer s")
    for m in models:
        rows[m].append(f"{train_times[m]:.1f}")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(rows[m]) + " |" for m in models]
    return "\n".join(lines) + "\n"


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
    from bench.pipeline_bench import machine, write_report
    from bench.protocols import write_protocols, write_validation_protocols
    from pipeline.cli import _process_environment

    _process_environment(verbose=False)
    from pipeline.config import load_config

    data_dir = os.path.abspath(args.data)
    work = os.path.abspath(args.work or data_dir.rstrip("/") + "-protocols")
    protocols = args.protocols.split(",")
    models = args.models.split(",")
    folders = write_protocols(data_dir, os.path.join(work, "data"), protocols)
    if args.validation:
        work = os.path.join(work, "validation")
        folders = write_validation_protocols(folders, os.path.join(work, "data"))
    base = load_config(args.config)
    start = time.monotonic()
    results = {p: run_protocol(p, folders[p], os.path.join(work, "runs"), models, base)
               for p in protocols}
    report = {"data": data_dir, "models": models, "machine": machine(), "results": results,
              "validation": args.validation,
              "training": dataclasses.asdict(base.training),
              "wall_seconds": time.monotonic() - start}
    write_report("quality-validation" if args.validation else "quality", report,
                 markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
