"""Continuous retraining on spans through the real pipeline: spans that arrived between runs
are caught up, training reads the rolling window, and a run with nothing new trains nothing."""

import csv
import json
import os
import random

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.training.trainer import WARM_START_FILE
from data import ingest, spans, synthetic
from data import raw_format as R
from pipeline import cli

CONFIG = """
span_window: 2
training:
  epochs: 2
  batch_size: 512
  autoencoder_epochs: 5
  item_item_neighbours: 32  # serves the pruned item-item path (each run prints its top 10)
  item_item_whole_rows_up_to: 0
evaluation:  # every run blessed: these tests are about spans, not the gate
  max_rmse: 1.2
  max_rmse_increase: 1.0
  min_ranking: 0.0
  max_ranking_drop: 1.0
"""


def _batch(folder, path, shift, seed, source=None):
    """800 of the latest span's (or source's) ratings again, later: a week of new ratings."""
    with open(os.path.join(source or spans.latest_folder(folder), "ratings.csv")) as handle:
        rows = list(csv.reader(handle))[1:]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for row in random.Random(seed).sample(rows, 800):
            writer.writerow([row[0], row[1], row[2], int(row[3]) + shift])
    return path


def _transform_input_spans(output):
    """Spans of the Examples the latest Transform execution read."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = os.path.join(output, "metadata.sqlite")
    store = metadata_store.MetadataStore(connection)
    transform_type = [t.id for t in store.get_execution_types() if t.name.endswith("Transform")]
    latest = max((e for e in store.get_executions() if e.type_id in transform_type),
                 key=lambda e: e.id)
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids([latest.id])
              if e.type == metadata_store_pb2.Event.INPUT]
    return sorted(a.custom_properties["span"].int_value for a in store.get_artifacts_by_id(inputs)
                  if "span" in a.custom_properties)


@pytest.fixture(scope="module")
def spanned(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    data = synthetic.generate(str(root / "data"), 200, 150, 8000, seed=5)
    for number in (1, 2):
        ingest.ingest(data, _batch(data, str(root / f"b{number}.csv"), number * 10**7, number))
    config = root / "config.yaml"
    config.write_text(CONFIG)
    return root, data, ["--data", data, "--output", str(root / "out"), "--config", str(config)]


def test_spans_missed_between_runs_are_caught_up_and_training_reads_the_window(
        spanned, capsys):
    root, _, args = spanned
    assert cli.main(["run", *args]) == 0
    assert "Spans 0–2; training on spans 1–2" in capsys.readouterr().out
    from pipeline.config import load_config
    from pipeline.results import ingested_spans

    assert ingested_spans(load_config(output_dir=str(root / "out"))) == {0, 1, 2}
    assert _transform_input_spans(str(root / "out")) == [1, 2]


def test_the_pruned_item_item_rows_rank_a_batch_as_each_user_alone(
        spanned, ranks_each_user_as_alone):
    root, data, _ = spanned
    from components.serving.export import SCORE_BLOCK_USERS
    from pipeline.serving import Recommender, latest_model_dir

    recommender = Recommender(latest_model_dir(str(root / "out" / "serving")))
    # the pruned form is served
    assert getattr(recommender._model, "item_neighbours", None) is not None
    ratings = R.read_table(spans.latest_folder(data), R.RATINGS_FILE)
    users = sorted({rating.user_id for rating in ratings})
    ranks_each_user_as_alone(recommender, users[:2 * SCORE_BLOCK_USERS + 3])


def test_a_run_with_nothing_new_trains_nothing_and_says_so(spanned, capsys):
    root, _, args = spanned
    versions = sorted(os.listdir(root / "out" / "serving"))
    assert cli.main(["run", *args]) == 0
    assert "No new data since the last run" in capsys.readouterr().out
    assert sorted(os.listdir(root / "out" / "serving")) == versions


def _warm_start_reports(root):
    runs = root / "out" / "pipeline" / "Trainer" / "model_run"
    return {int(run): json.loads((runs / run / WARM_START_FILE).read_text())
            for run in os.listdir(runs) if (runs / run / WARM_START_FILE).exists()}


def test_a_new_span_moves_the_window_and_warm_starts_from_the_model_in_service(
        spanned, capsys):
    root, data, args = spanned
    assert not _warm_start_reports(root)  # the first run started cold
    ingest.ingest(data, _batch(data, str(root / "b3.csv"), 3 * 10**7, 3))
    assert cli.main(["run", *args]) == 0
    assert "training on spans 2–3" in capsys.readouterr().out
    assert _transform_input_spans(str(root / "out")) == [2, 3]
    [report] = _warm_start_reports(root).values()
    mapped = report["mapped"]
    assert mapped["user_tower/user_id/vectors/embeddings"] > 150  # most users carried over
    assert mapped["item_tower/item_id/vectors/embeddings"] > 100
    assert mapped["item_autoencoder/encoder"] == mapped["user_tower/user_id/vectors/embeddings"]
    assert "global_bias" in report["copied"] and "item_autoencoder/encoder_bias" in report["copied"]


def test_the_new_spans_report_measures_its_drift_against_the_previous_span(spanned):
    root, _, _ = spanned
    reports = root / "out" / "reports"
    assert sorted(os.listdir(reports)) == ["1", "2"]  # the run with nothing new wrote none
    first, second = (json.loads((reports / n / "facts.json").read_text()) for n in ("1", "2"))
    assert first["data"]["drift"] is None  # span 2 is the first with statistics
    drift = second["data"]["drift"]
    assert drift["against"] == "span 2"
    gated = {row["feature"]: row for row in drift["features"] if row["threshold"] is not None}
    assert {"item_id", "rating"} <= set(gated) and not any(r["fired"] for r in gated.values())


def test_history_lists_each_run_with_its_spans_metrics_and_pushed_version(spanned, capsys):
    root, _, args = spanned
    from pipeline.config import load_config
    from pipeline.history import run_history, serving_versions

    config = load_config(output_dir=str(root / "out"))
    records = run_history(config)
    assert [r.spans for r in records] == [[1, 2], [2, 3]]
    assert [r.pushed_version for r in records] == serving_versions(config)
    assert all(r.blessed and 0.5 < r.rmse < 1.2 and "ndcg@10" in r.ranking for r in records)
    assert cli.main(["history", "--output", str(root / "out")]) == 0
    out = capsys.readouterr().out
    assert "1-2" in out and "2-3" in out and records[-1].pushed_version in out


def test_rollback_serves_the_earlier_version_and_the_baseline_follows(spanned, capsys):
    root, _, args = spanned
    from pipeline.config import load_config
    from pipeline.history import run_history, serving_versions
    from pipeline.results import open_store

    config = load_config(output_dir=str(root / "out"))
    first, second = serving_versions(config)
    assert cli.main(["rollback", "--output", str(root / "out")]) == 0
    assert f"a copy of version {first}" in capsys.readouterr().out
    *_, served = serving_versions(config)
    assert int(served) > int(second)
    for name in ("saved_model.pb", "fingerprint.pb"):
        assert (root / "out" / "serving" / served / name).read_bytes() == (
            root / "out" / "serving" / first / name).read_bytes()
    assert [r.revoked for r in run_history(config)] == [False, True]
    blessed = [a.custom_properties["current_model_id"].int_value
               for a in open_store(config).get_artifacts_by_type("ModelBlessing")
               if "/ReleaseGate/" in a.uri and a.custom_properties["blessed"].int_value]
    assert blessed == [run_history(config)[0].model_id]  # the next run's baseline
    assert cli.main(["rollback", "42", "--output", str(root / "out")]) == cli.EXIT_NO_MODEL
    assert "version 42 is not in" in capsys.readouterr().err
    assert serving_versions(config)[-1] == served


def test_a_drifted_span_stops_the_run_before_training_and_serving_is_untouched(
        spanned, capsys):
    root, data, args = spanned
    drifted = root / "drifted.csv"
    with open(drifted, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for user in range(1, 201):  # everyone gives item 1 the lowest rating
            writer.writerow([user, 1, 1, 5 * 10**8 + user])
    ingest.ingest(data, str(drifted))
    versions = sorted(os.listdir(root / "out" / "serving"))
    assert cli.main(["run", *args]) == cli.EXIT_ANOMALIES
    error = capsys.readouterr().err
    assert "drifted from the previous run's" in error
    assert "feature 'item_id'" in error and "feature 'rating'" in error
    assert sorted(os.listdir(root / "out" / "serving")) == versions


def test_after_a_stopped_span_the_next_span_is_checked_against_the_last_good_one_and_trained(
        spanned, capsys):
    root, data, args = spanned
    from pipeline.config import load_config
    from pipeline.results import open_store
    from pipeline.validated_spans import stopped_spans

    assert stopped_spans(open_store(load_config(output_dir=str(root / "out")))) == {4}
    versions = sorted(os.listdir(root / "out" / "serving"))
    normal_week = _batch(data, str(root / "b5.csv"), 5 * 10**7, 5, source=os.path.join(
        data, spans.span_name(3)))
    ingest.ingest(data, normal_week)
    assert cli.main(["run", *args]) == 0, capsys.readouterr().err
    assert _transform_input_spans(str(root / "out")) == [3, 5]  # the window skips span 4
    assert len(os.listdir(root / "out" / "serving")) == len(versions) + 1


def _pairs(folder):
    return {(r.user_id, r.item_id) for r in R.read_table(folder, R.RATINGS_FILE)}


def test_movies_of_a_span_that_left_the_window_stay_excluded(spanned, capsys):
    """Spans 6 and 7 hold other ratings than span 5 (drawn from span 0): after them the window
    is 6–7 and the model never trained on span 5, yet it still excludes span 5's movies, as it
    excludes those of every span a model in service trained on (1, 2, 3, 5; 4 was stopped)."""
    root, data, args = spanned
    from pipeline.serving import Recommender, latest_model_dir

    for number in (6, 7):
        ingest.ingest(data, _batch(data, str(root / f"b{number}.csv"), number * 10**7, number,
                                   source=os.path.join(data, spans.span_name(0))))
        assert cli.main(["run", *args]) == 0, capsys.readouterr().err
    assert _transform_input_spans(str(root / "out")) == [6, 7]
    rated = {}
    for span in (1, 2, 3, 5, 6, 7):
        for user, item in _pairs(os.path.join(data, spans.span_name(span))):
            rated.setdefault(user, set()).add(item)
    window = _pairs(os.path.join(data, spans.span_name(6))) | _pairs(
        os.path.join(data, spans.span_name(7)))
    left_only = _pairs(os.path.join(data, spans.span_name(5))) - window
    # Users the new model knows (a user absent from the window is a new user to it).
    users = sorted({user for user, _ in window} & {user for user, _ in left_only})
    assert len(users) > 20
    recommender = Recommender(latest_model_dir(str(root / "out" / "serving")))
    catalog = recommender._model.item_ids.shape[0]
    for user, rows in zip(users, recommender.recommend(users, k=catalog)):
        unseen = {item for item, score in rows if score > float("-inf")}
        assert not unseen & rated[user], user
