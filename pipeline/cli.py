"""`recsys`: run the pipeline, fetch data, and ask the pushed model for recommendations."""

import argparse
import errno
import json
import logging
import os
import re
import sys
import time
import warnings

from pipeline import arguments, heap

EXIT_DATA_ERROR = 2
EXIT_ANOMALIES = 3
EXIT_NO_MODEL = 4
EXIT_FAILED = 1
EXIT_LOCKED = 5
EXIT_EXAMPLES_LOST = 6
EXIT_DAMAGED = 7
EXIT_NO_SPACE = 8


def tensorflow_environment() -> None:
    """Keras 2 and the system's allocator for every TF process (before TF is imported): the
    command, the benchmarks, the Airflow DAG and the tests."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # TensorFlow's oneDNN build keeps large tensors in a pool of its own and never hands it
    # back, so the Trainer's memory stayed with the process through the later components
    # (docs/design.md).
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")


def _process_environment(verbose: bool) -> None:
    """tensorflow_environment; TF, Beam and absl logs only with -v."""
    tensorflow_environment()
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        warnings.filterwarnings("ignore")
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(logging.NullHandler())
        root.setLevel(logging.ERROR)
        logging.getLogger("absl").propagate = False


def _print_recommendations(title: str, rows, titles) -> None:
    print(title)
    for rank, (item_id, score) in enumerate(rows, start=1):
        print(f"  {rank:2d}. {titles.get(item_id, '?')}  [item {item_id}, score {score:.3f}]")


def _first_user(data_dir: str) -> str:
    from data import raw_format as R

    path = os.path.join(data_dir, R.RATINGS_FILE)
    row, values = next(R.read_rows(path, R.RATINGS_COLUMNS))
    return R.parse_rating(path, row, values).user_id


def _print_summary(config, durations, elapsed, result) -> None:
    from components.evaluator.metrics import RMSE_NAME
    from components.release_gate.component import SAME_MODEL
    from pipeline.results import COUNT_NAME, MAE_NAME

    print(f"\nPipeline finished in {elapsed:.1f} s")
    for component, seconds in durations.items():
        print(f"  {component:32s} {seconds:7.1f} s")
    count = int(result.metrics.get(COUNT_NAME, 0))
    print(f"\nEvaluation on the eval split ({count:,} ratings):")
    for label, name in (("RMSE", RMSE_NAME), ("MAE", MAE_NAME)):
        previous = result.baseline_metrics.get(name)
        against = (f"   previous blessed model: {previous:.4f}" if previous is not None
                   else "   (no previous blessed model)")
        print(f"  {label:5s} {result.metrics.get(name, float('nan')):.4f}{against}")
    for name, value in result.ranking.items():
        if name.endswith(f"@{config.evaluation.ranking_k}"):
            previous = result.baseline_ranking.get(name)
            against = (f"   previous blessed model: {previous:.4f}" if previous is not None
                       else "")
            print(f"  {name:12s} {value:.4f}{against}")
    print("  RMSE by slice:")
    for slice_name, metrics in sorted(result.slices.items()):
        if slice_name != "overall":
            print(f"    {slice_name:28s} {metrics.get(RMSE_NAME, float('nan')):.4f}"
                  f"  n={int(metrics.get(COUNT_NAME, 0)):,}")
    if SAME_MODEL in result.gate_failures:
        print("\nNo new data since the last run: every component came from cache and the "
              "model in service is this model. Nothing pushed.")
    elif result.blessed:
        print(f"\nBlessed: yes. Pushed to {result.pushed_dir}")
    else:
        print("\nBlessed: no. Nothing pushed; the model in service is unchanged.")
        for failure in result.gate_failures:
            print(f"  gate failed: {failure}")


def _command_run(args, config) -> int:
    from pipeline.lock import output_lock
    from pipeline.on_dask.cluster import dask_cluster

    def say_stale(owner):
        print("Took over a lock file that could not be read" if owner.get("unreadable") else
              f"Cleared the lock of a run that is gone (pid {owner.get('pid')}, started "
              f"{owner.get('started')})")

    with output_lock(config.output_dir, on_stale=say_stale), dask_cluster(config) as address:
        if address:
            print(f"Beam components on the Dask cluster at {address}", flush=True)
        return _watch(config, args.interval) if args.watch else _run_once(config)


def _watch(config, interval: float) -> int:
    """Runs whenever the data, code or settings changed since the last completed run; a run
    that fails on bad data (or on examples the runner lost) is not retried until something
    changes. Ctrl-C stops."""
    from components.example_gen.example_count import ExamplesLostError
    from components.validation_gate.anomalies import DataAnomaliesError
    from data.raw_format import DataError
    from pipeline.run_record import last_run, run_key

    print(f"Watching {config.data_dir} every {interval:g} s (Ctrl-C stops)", flush=True)
    failed = None
    try:
        while True:
            key = run_key(config)
            if key not in (failed, last_run(config).get("run_key")):
                try:
                    _run_once(config)
                except (DataError, DataAnomaliesError, ExamplesLostError) as error:
                    print(f"error: {error}", file=sys.stderr, flush=True)
                    failed = key
            _sleep(interval)
    except KeyboardInterrupt:
        return 0


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _run_once(config) -> int:
    from pipeline.results import check_metadata
    from pipeline.run_record import check_raw_folders, nothing_new, record_run, run_key

    check_raw_folders(config)
    check_metadata(config)
    if config.spanned:
        from data import spans

        numbers = [span for span, _ in spans.spans(config.data_dir)]
        window = numbers[-config.span_window:] if config.span_window else numbers
        print(f"Spans {numbers[0]}–{numbers[-1]}; training on spans {window[0]}–{window[-1]}")
    key = run_key(config)
    if nothing_new(config, key):
        return 0

    print(f"Output {config.output_dir}")
    start = time.monotonic()

    def progress(component, state, seconds):
        stamp = f"[{time.monotonic() - start:6.1f} s]"
        if state == "running":
            print(f"{stamp} {component} ...", flush=True)
        else:
            print(f"{stamp} {component} done in {seconds:.1f} s", flush=True)

    from components.validation_gate.anomalies import DataAnomaliesError
    from pipeline.memory import PeakMemory

    finished = {}  # the components' times so far, for the report of a run that stops

    def timed(component, state, seconds):
        memory.start(component if state == "running" else "between components")
        if state != "running":
            finished[component] = seconds
        progress(component, state, seconds)

    stopped = None
    with PeakMemory() as memory:
        try:
            durations = _run_rebuilding_damaged(config, timed)
        except DataAnomaliesError as error:
            stopped = error
    if stopped is not None:
        # The report shows the statistics and the rule that fired; the error still ends the
        # run with its own exit code.
        _write_report(config, finished, memory.peaks, str(stopped))
        raise stopped
    result = record_run(config, key, durations)
    _print_summary(config, durations, time.monotonic() - start, result)
    if result.pushed_dir:
        from pipeline.serving import Recommender, item_titles

        recommender = Recommender(result.pushed_dir)
        titles, user = item_titles(config.raw_folders[0]), _first_user(config.raw_folders[0])
        _print_recommendations(f"\nTop 10 for user {user}:", recommender.recommend([user])[0],
                               titles)
    _write_report(config, durations, memory.peaks)
    return 0


def _run_rebuilding_damaged(config, on_event):
    """local_runner.run; once more when it failed on examples found damaged, set aside so the
    rerun writes them anew (pipeline/damaged_examples.py)."""
    from pipeline import local_runner
    from pipeline.damaged_examples import is_data_loss, set_aside_damaged_examples

    try:
        return local_runner.run(config, on_event)
    except Exception as error:
        if not is_data_loss(error):
            raise
        damaged = set_aside_damaged_examples(config)
        if not damaged:
            raise
    for found in damaged:
        print(f"Examples of span {found.span} are damaged ({found.shard}: {found.why}); "
              "writing them anew from the span's raw files", flush=True)
    return local_runner.run(config, on_event)


def _write_report(config, durations, peak_mb, error=None) -> None:
    from pipeline.report.writer import report_or_warning, write_run_report

    start = time.monotonic()
    path = report_or_warning(write_run_report, config, durations, peak_mb, error)
    if path:
        print(f"\nReport: {path} ({time.monotonic() - start:.1f} s; `recsys report` opens it)")


def _serving_context(args, config):
    from pipeline.serving import BrokenModelError, Recommender, item_titles, latest_model_dir

    data_dir = config.raw_folders[0]
    if args.data is None:
        from pipeline.run_record import last_run

        data_dir = last_run(config).get("data_dir", data_dir)
    try:
        recommender = Recommender(latest_model_dir(config.serving_dir))
    except BrokenModelError as error:
        from components.pusher.versions import numbered_versions

        earlier = numbered_versions(config.serving_dir)[:-1]
        raise BrokenModelError(
            f"{error}: `recsys rollback` serves version {earlier[-1]} again" if earlier else
            f"{error}: `recsys run` pushes a new version above it") from None
    titles = item_titles(data_dir) if os.path.exists(data_dir) else {}
    return recommender, titles


def _emit(args, header: str, rows, titles) -> None:
    if args.json:
        print(json.dumps([{"item_id": i, "title": titles.get(i), "score": s} for i, s in rows]))
    else:
        _print_recommendations(header, rows, titles)


def _command_recommend(args, config) -> int:
    from components import features as F
    from pipeline.serving import Constraints

    given = {F.AGE: args.age, F.GENDER: args.gender, F.OCCUPATION: args.occupation,
             F.ZIP_CODE: args.zip_code}
    if any(v is not None for v in given.values()) and None in given.values():
        missing = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is None]
        print(f"error: user features need all four of --age, --gender, --occupation, "
              f"--zip-code; missing {', '.join(missing)}", file=sys.stderr)
        return EXIT_DATA_ERROR
    new_user = bool(args.likes) or (args.user is None and bool(args.genres))
    if args.user is None and not new_user:
        print("error: give --user (a known or new user's id) or a new user's answers "
              "(--likes and/or --genres)", file=sys.stderr)
        return EXIT_DATA_ERROR
    constraints = Constraints(
        include_genres=() if new_user else args.genres, exclude_genres=args.not_genres,
        min_year=args.years[0], max_year=args.years[1], exclude_item_ids=args.exclude)
    recommender, titles = _serving_context(args, config)
    if new_user:
        rows = recommender.recommend_from_answers(args.likes, args.genres, constraints, args.k)
        header = f"Top {args.k} for a new user who likes {_answers(args, titles)}"
    elif constraints != Constraints():
        rows = recommender.recommend_constrained([args.user], constraints, args.k)[0]
        header = f"Top {args.k} for user {args.user} within the constraints"
    else:
        features = None if args.age is None else {k: [v] for k, v in given.items()}
        rows = recommender.recommend([args.user], args.k, features)[0]
        header = f"Top {args.k} for user {args.user}"
    if not rows:
        reason = (Constraints(include_genres=args.genres, **_other_constraints(constraints))
                  .unmet(_catalog_items(args, config)))
        print(f"No recommendation: {reason or 'every movie that meets them was rated already'}"
              if not args.json else "[]")
        return 0
    _emit(args, f"{header} ({recommender.model_dir}):", rows, titles)
    return 0


def _other_constraints(constraints) -> dict:
    return {"exclude_genres": constraints.exclude_genres, "min_year": constraints.min_year,
            "max_year": constraints.max_year, "exclude_item_ids": constraints.exclude_item_ids}


def _answers(args, titles) -> str:
    movies = [titles.get(item, item) for item in args.likes]
    return ", ".join(movies + list(args.genres))


def _catalog_items(args, config):
    from data import raw_format as R
    from pipeline.run_record import last_run

    data_dir = args.data or last_run(config).get("data_dir", config.raw_folders[0])
    return R.read_table(data_dir, R.ITEMS_FILE) if os.path.exists(data_dir) else []


def _command_similar(args, config) -> int:
    recommender, titles = _serving_context(args, config)
    rows = recommender.similar_items([args.item], args.k)[0]
    name = titles.get(args.item, args.item)
    _emit(args, f"Items similar to {name} ({recommender.model_dir}):", rows, titles)
    return 0


def _command_audience(args, config) -> int:
    recommender, titles = _serving_context(args, config)
    rows = recommender.users_for_item([args.item], args.k)[0]
    name = titles.get(args.item, args.item)
    if args.json:
        print(json.dumps([{"user_id": u, "score": s} for u, s in rows]))
        return 0
    print(f"Users {name} suits best ({recommender.model_dir}):")
    for rank, (user_id, score) in enumerate(rows, start=1):
        print(f"  {rank:2d}. user {user_id}  [score {score:.3f}]")
    return 0


def _command_ingest(args, config) -> int:
    from data.ingest import QUARANTINE_FILE, ingest

    result = ingest(config.data_dir, args.ratings_file, args.users, args.items,
                    quarantine=args.quarantine)
    print(f"Span {result.span} written to {result.folder}: {result.ratings:,} ratings; "
          f"users {result.new_users:,} new, {result.changed_users:,} changed; "
          f"items {result.new_items:,} new, {result.changed_items:,} changed")
    if result.quarantined:
        print(f"{result.quarantined:,} bad row(s) quarantined with their reasons in "
              f"{os.path.join(result.folder, QUARANTINE_FILE)}")
    return 0


def _command_history(args, config) -> int:
    from pipeline.history import Interrupted, interrupted_runs, run_history, serving_versions

    records, interrupted = run_history(config), interrupted_runs(config)
    if not records and not interrupted:
        print(f"No runs recorded in {config.output_dir}")
        return 0
    metric = config.evaluation.ranking_metric
    print(f"{'finished':19s}  {'spans':9s}  {'RMSE':>6s}  {metric:>8s}  {'blessed':8s}  pushed")
    rows = [(r.finished_time, r) for r in records] + [(i.started_time, i) for i in interrupted]
    for _, record in sorted(rows, key=lambda row: row[0]):
        if isinstance(record, Interrupted):
            again = " (a rerun starts there again)" if record.how.startswith("interrupted") else ""
            print(f"{record.started:19s}  {record.how}{again}")
            continue
        spans = (f"{record.spans[0]}-{record.spans[-1]}" if len(record.spans) > 1 else
                 ",".join(map(str, record.spans)) or "-")
        rmse = f"{record.rmse:.4f}" if record.rmse is not None else "-"
        blessed = "revoked" if record.revoked else ("yes" if record.blessed else "no")
        print(f"{record.finished:19s}  {spans:9s}  {rmse:>6s}  "
              f"{record.ranking.get(metric, float('nan')):8.4f}  {blessed:8s}  "
              f"{record.pushed_version or '-'}")
        for failure in record.failures:
            print(f"{'':21s}gate: {failure}")
    versions = serving_versions(config)
    print(f"Serving: version {versions[-1] if versions else 'none'} of "
          f"{', '.join(versions) or 'none'}")
    return 0


def _command_rollback(args, config) -> int:
    from pipeline.history import rollback
    from pipeline.lock import output_lock
    from pipeline.report.writer import report_or_warning, write_rollback_report

    with output_lock(config.output_dir):
        new_version, version = rollback(config, args.version)
        path = report_or_warning(write_rollback_report, config, new_version, version)
    print(f"Serving version {new_version}: a copy of version {version}; the next run "
          "compares against its model")
    if path:
        print(f"Report: {path}")
    return 0


def _command_report(args, config) -> int:
    from pipeline.report.writer import report_path

    path = report_path(config, args.run)
    print(path)
    if _has_display():
        import webbrowser

        webbrowser.open("file://" + os.path.abspath(path))
    return 0


def _has_display() -> bool:
    """Where a browser can show a page: a desktop session, macOS or Windows."""
    return (sys.platform in ("darwin", "win32")
            or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")))


def _command_kubeflow(args, config) -> int:
    from pipeline.kubeflow_runner import compile_pipeline

    spec = compile_pipeline(config, args.spec, args.image)
    print(f"Kubeflow Pipelines spec: {spec} (image {args.image}; data {config.data_dir}, "
          f"output {config.output_dir})")
    return 0


def _command_serve(args, config) -> int:
    from pipeline.run_record import last_run
    from pipeline.server.app import serve
    from pipeline.server.versions import ModelVersions
    from pipeline.serving import latest_model_dir

    latest_model_dir(config.serving_dir)  # no model yet: the one-line error, before binding
    # The server's own lines (versions, requests), whatever the libraries' logging is set to.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    server_log = logging.getLogger("recsys")
    server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)
    server_log.propagate = False
    versions = ModelVersions(config.serving_dir)
    versions.poll()
    if versions.served is None:
        print(f"error: no version in {config.serving_dir} loads: {versions.refused()}",
              file=sys.stderr)
        return EXIT_NO_MODEL
    data_dir = args.data or last_run(config).get("data_dir", config.raw_folders[0])
    print(f"Serving {config.serving_dir} version {versions.served.version} on "
          f"http://{args.host}:{args.port}/ (TF Serving REST: /v1/models/recsys)", flush=True)
    serve(versions, data_dir, args.host, args.port, args.poll, args.threads)
    return 0


def _command_fetch(args, config) -> int:
    from data.movielens import fetch_movielens_100k

    path = fetch_movielens_100k(config.data_dir, source=args.source)
    print(f"MovieLens-100K in {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", help="raw data folder (ratings.csv, users.csv, items.csv)")
    common.add_argument("--output", help="output folder (pipeline root, metadata, serving)")
    common.add_argument("--config", help="YAML file of settings (see pipeline/config.py)")
    common.add_argument("-v", "--verbose", action="store_true", help="show TF, Beam, absl logs")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="run the whole pipeline")
    run.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                     help="extra Beam pipeline option, e.g. --beam-arg=--direct_num_workers=2")
    run.add_argument("--beam-runner", choices=("direct", "dask"), dest="beam_runner",
                     help="where the Beam components run: direct (default) or dask (a local "
                          "cluster of --dask-workers processes, or the one at --dask-address "
                          "or DASK_SCHEDULER_ADDRESS)")
    run.add_argument("--dask-workers", type=arguments.positive, dest="dask_workers",
                     help="worker processes of the local Dask cluster (default 2)")
    run.add_argument("--dask-address", dest="dask_address",
                     help="a running Dask scheduler, e.g. tcp://HOST:8786")
    run.add_argument("--watch", action="store_true",
                     help="keep running: retrain whenever a new span (or code or settings) "
                          "lands")
    run.add_argument("--interval", type=arguments.seconds, default=60.0,
                     help="seconds between checks with --watch (default 60)")
    run.set_defaults(handler=_command_run)
    recommend = commands.add_parser("recommend", parents=[common],
                                    help="top-k movies for a user from the latest pushed model")
    recommend.add_argument("--user", help="a known user's id (or a new user's, with "
                                          "--age, --gender, --occupation, --zip-code)")
    recommend.add_argument("--age", type=int)
    recommend.add_argument("--gender")
    recommend.add_argument("--occupation")
    recommend.add_argument("--zip-code", dest="zip_code")
    recommend.add_argument("--likes", type=arguments.rated_items, default={},
                           help="a new user's movies: ids, each optionally :rating "
                                "(default 5), e.g. 50,181:4,172")
    recommend.add_argument("--genres", type=arguments.names, default=(),
                           help="only these genres (any of them), e.g. Sci-Fi,Comedy")
    recommend.add_argument("--not-genres", type=arguments.names, default=(), dest="not_genres",
                           help="none of these genres")
    recommend.add_argument("--years", type=arguments.year_range, default=(0, 0),
                           help="release years, e.g. 1990-1999, 1995- or -1980")
    recommend.add_argument("--exclude", type=arguments.names, default=(),
                           help="movie ids never to recommend, e.g. 50,181")
    similar = commands.add_parser("similar", parents=[common],
                                  help="movies similar to a movie, from the latest pushed model")
    similar.add_argument("--item", required=True)
    audience = commands.add_parser("audience", parents=[common],
                                   help="the users a movie suits best, from the latest pushed "
                                        "model")
    audience.add_argument("--item", required=True)
    for sub in (recommend, similar, audience):
        sub.add_argument("-k", type=arguments.positive, default=10, help="how many (default 10)")
        sub.add_argument("--json", action="store_true", help="print JSON")
    recommend.set_defaults(handler=_command_recommend)
    similar.set_defaults(handler=_command_similar)
    audience.set_defaults(handler=_command_audience)
    ingest = commands.add_parser(
        "ingest", parents=[common],
        help="validate a batch of new ratings and write it as the data folder's next span")
    ingest.add_argument("ratings_file", metavar="FILE",
                        help="new ratings (user_id,item_id,rating,timestamp)")
    ingest.add_argument("--users", help="new or changed users (users.csv columns)")
    ingest.add_argument("--items", help="new or changed items (items.csv columns)")
    ingest.add_argument("--quarantine", action="store_true",
                        help="ingest the good rows; bad rows go to the span's quarantine.csv")
    ingest.set_defaults(handler=_command_ingest)
    history = commands.add_parser("history", parents=[common],
                                  help="every run: spans, metrics, blessing, pushed version")
    history.set_defaults(handler=_command_history)
    rollback = commands.add_parser("rollback", parents=[common],
                                   help="serve an earlier pushed version again")
    rollback.add_argument("version", nargs="?",
                          help="pushed version (default: the one before the version served)")
    rollback.set_defaults(handler=_command_rollback)
    report = commands.add_parser("report", parents=[common],
                                 help="the path of a run's HTML report (opened where a "
                                      "browser can show it)")
    report.add_argument("--run", type=arguments.positive,
                        help="the run's number (default: the latest)")
    report.set_defaults(handler=_command_report)
    kubeflow = commands.add_parser(
        "kubeflow", parents=[common],
        help="compile the pipeline for Kubeflow Pipelines v2 / Vertex AI (JSON spec)")
    kubeflow.add_argument("--spec", default=os.path.join("build", "kubeflow", "pipeline.json"),
                          help="where to write the spec (default build/kubeflow/pipeline.json)")
    kubeflow.add_argument("--image", default="recsys-pipeline:latest",
                          help="the pipeline image every step runs in (see Dockerfile)")
    kubeflow.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                          help="extra Beam pipeline option for the Beam components")
    kubeflow.set_defaults(handler=_command_kubeflow)
    serve = commands.add_parser(
        "serve", parents=[common],
        help="serve the newest pushed model over HTTP (TF Serving's REST API, a JSON API, a "
             "page); a version pushed meanwhile is swapped in")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=arguments.port, default=8501,
                       help="port (default 8501, TF Serving's REST port)")
    serve.add_argument("--poll", type=arguments.seconds, default=1.0,
                       help="seconds between looks for a newer version (default 1)")
    serve.add_argument("--threads", type=arguments.positive, default=4,
                       help="threads calling the model (default 4)")
    serve.set_defaults(handler=_command_serve)
    fetch = commands.add_parser("fetch", parents=[common], help="fetch MovieLens-100K")
    fetch.add_argument("--source", help="GroupLens ml-100k zip, folder or URL "
                                        "(default: the copy in the recbole wheel on PyPI)")
    fetch.set_defaults(handler=_command_fetch)
    return parser


def main(argv=None, own_process: bool = False) -> int:
    """own_process: the `recsys` command (console), not a caller's process: the libraries'
    objects are frozen once imported (pipeline/heap.py)."""
    args = _parser().parse_args(argv)
    _process_environment(args.verbose)
    # TensorFlow, TFX and Beam, through the pipeline's modules (pipeline.config imports every
    # TFX component).
    with heap.long_lived(freeze=own_process):
        from components.example_gen.example_count import ExamplesLostError
        from components.validation_gate.anomalies import DataAnomaliesError
        from data.raw_format import DataError
        from pipeline.config import load_config
        from pipeline.history import RollbackError
        from pipeline.lock import OutputLockedError
        from pipeline.report import NoReportError
        from pipeline.results import MetadataDamagedError
        from pipeline.serving import NoModelError, RequestError

    # Errors users can act on: one line, and an exit code of their own.
    exit_codes = ((DataError, EXIT_DATA_ERROR), (DataAnomaliesError, EXIT_ANOMALIES),
                  (NoModelError, EXIT_NO_MODEL), (RollbackError, EXIT_NO_MODEL),
                  (RequestError, EXIT_DATA_ERROR), (NoReportError, EXIT_NO_MODEL),
                  (OutputLockedError, EXIT_LOCKED), (ExamplesLostError, EXIT_EXAMPLES_LOST),
                  (MetadataDamagedError, EXIT_DAMAGED))
    try:
        config = load_config(args.config, data_dir=args.data, output_dir=args.output,
                             **{name: getattr(args, name, None) for name in
                                ("beam_runner", "dask_workers", "dask_address")})
        if getattr(args, "beam_args", None):
            config = config.with_beam_args(args.beam_args)
        return args.handler(args, config)
    except tuple(kind for kind, _ in exit_codes) as error:
        print(f"error: {error}", file=sys.stderr)
        return next(code for kind, code in exit_codes if isinstance(error, kind))
    except Exception as error:  # noqa: BLE001 - one line for users, the traceback with -v
        full = _no_space(error)
        if full and not args.verbose:
            print(f"error: no space left on device ({full}); free some and run the command "
                  "again: nothing half written is kept or served (a run goes on from the "
                  "components that finished)", file=sys.stderr)
            return EXIT_NO_SPACE
        if args.verbose:
            raise
        print(f"error: {type(error).__name__}: {error} (run with -v for details)",
              file=sys.stderr)
        return EXIT_FAILED


def _no_space(error: BaseException):
    """The first line of the error (or of what caused it) that says the disk is full."""
    while error is not None:
        text = str(error)
        if (getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in text
                or "database or disk is full" in text):
            # (ML Metadata's message goes on with the whole SQL query)
            line = text.strip().splitlines()[0] if text.strip() else "ENOSPC"
            return re.sub(r"\s+query:\s+[A-Z]{4,}\b.*", "", line)[:300]
        error = error.__cause__ or error.__context__
    return None


def console() -> None:
    """The `recsys` command (pyproject's entry point): main() in a process of its own."""
    heap.exit_uncollected(main(own_process=True))


if __name__ == "__main__":
    console()
