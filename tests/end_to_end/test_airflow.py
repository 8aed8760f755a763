"""The Airflow DAG, run for real: `airflow dags test` runs every task against a SQLite Airflow
database, the pushed model answers `recommend`, a new span is trained through the window with a
warm start, a day with nothing new skips every component, and bad data fails the run before
any component with the model in service untouched."""

import json
import os
import subprocess
import sys

import pytest

from data import ingest, synthetic
from pipeline import cli
from pipeline.lock import LEASE_FILE
from tests import PROJECT_DIR
from tests.end_to_end.test_spans_e2e import CONFIG
from tests.end_to_end.test_spans_e2e import _batch as week_batch

AIRFLOW = os.path.join(os.path.dirname(sys.executable), "airflow")


def _new_span(data, path, shift, seed):
    ingest.ingest(data, week_batch(data, path, shift, seed))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """An Airflow home with a migrated SQLite database and the project's DAG folder; returns
    (run the DAG for a date -> completed process, data folder, output folder, work folder)."""
    root = tmp_path_factory.mktemp("airflow")
    data = synthetic.generate(str(root / "data"), 200, 150, 8000, seed=5)
    _new_span(data, str(root / "b1.csv"), 10**7, 1)  # span-0 and span-1
    (root / "config.yaml").write_text(CONFIG)
    env = dict(os.environ, AIRFLOW_HOME=str(root / "home"),
               AIRFLOW__CORE__DAGS_FOLDER=os.path.join(PROJECT_DIR, "pipeline", "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{root / 'home' / 'airflow.db'}",
               RECSYS_DATA=data, RECSYS_OUTPUT=str(root / "out"),
               RECSYS_CONFIG=str(root / "config.yaml"), TF_USE_LEGACY_KERAS="1")
    os.makedirs(root / "home")
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)

    def run_dag(date):
        return subprocess.run([AIRFLOW, "dags", "test", "recsys", date], env=env,
                              capture_output=True, text=True)

    run_dag.env = env
    return run_dag, data, root / "out", root


def _serving_versions(out):
    return sorted(os.listdir(out / "serving")) if (out / "serving").exists() else []


def test_the_dag_wires_the_checks_around_every_component_and_runs_one_at_a_time(
        airflow, monkeypatch):
    run_dag, data, out, _ = airflow
    for name in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.setenv(name, run_dag.env[name])  # importing airflow writes its home
    from pipeline.airflow_runner import CHECK_TASK, RECORD_TASK, RELEASE_TASK, create_dag
    from pipeline.config import load_config

    dag = create_dag(load_config(data_dir=data, output_dir=str(out)))
    assert dag.dag_id == "recsys" and not dag.catchup and dag.max_active_runs == 1
    assert dag.schedule_interval == "@daily"
    check, record = dag.get_task(CHECK_TASK), dag.get_task(RECORD_TASK)
    release = dag.get_task(RELEASE_TASK)
    components = {t.task_id for t in dag.tasks} - {CHECK_TASK, RECORD_TASK, RELEASE_TASK}
    assert {"FileBasedExampleGen", "Transform", "Trainer", "Evaluator", "ReleaseGate",
            "Pusher", "span_window"} <= components
    assert check.get_flat_relative_ids(upstream=False) >= components | {RECORD_TASK}
    assert record.get_flat_relative_ids(upstream=True) >= components | {CHECK_TASK}
    # The lease is given back after every other task, whether they succeeded or not.
    assert release.trigger_rule == "all_done"
    assert release.get_flat_relative_ids(upstream=True) == components | {CHECK_TASK,
                                                                         RECORD_TASK}


def test_the_dag_trains_pushes_and_the_pushed_model_answers_recommend(airflow, capsys):
    run_dag, _, out, _ = airflow
    result = run_dag("2024-01-01")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Caught up on span 0" in result.stdout + result.stderr  # read with span 1
    [version] = _serving_versions(out)
    assert not (out / LEASE_FILE).exists()  # given back
    assert json.loads((out / "last_run.json").read_text())["pushed_dir"].endswith(version)
    assert cli.main(["recommend", "--user", "1", "--output", str(out), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 10


def test_a_new_span_is_trained_through_the_window_with_a_warm_start(airflow):
    run_dag, data, out, root = airflow
    _new_span(data, str(root / "b2.csv"), 2 * 10**7, 2)
    result = run_dag("2024-01-02")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(_serving_versions(out)) == 2
    runs = out / "pipeline" / "Trainer" / "model_run"
    reports = [json.loads((runs / r / "warm_start.json").read_text()) for r in os.listdir(runs)
               if (runs / r / "warm_start.json").exists()]
    assert len(reports) == 1 and reports[0]["mapped"]["item_tower/item_id/vectors/embeddings"]
    from pipeline.config import load_config
    from pipeline.history import run_history

    assert [r.spans for r in run_history(load_config(output_dir=str(out)))] == [[0, 1], [1, 2]]


def test_each_dag_run_writes_its_report_with_the_components_times(airflow):
    _, _, out, _ = airflow
    reports = out / "reports"
    assert sorted(os.listdir(reports)) == ["1", "2"]  # the two runs above
    facts = json.loads((reports / "2" / "facts.json").read_text())
    assert facts["run"]["outcome"] == "pushed" and facts["data"]["drift"]["against"] == "span 1"
    seconds = {c["name"]: c["seconds"] for c in facts["training"]["components"]}
    assert seconds["Trainer"] > 0 and "Evaluator" in seconds and "ReleaseGate" in seconds
    assert [bool(r["pushed_version"]) for r in facts["history"]["runs"]] == [True, True]
    assert (reports / "2" / "index.html").stat().st_size > 10_000


def test_a_day_with_nothing_new_skips_every_component_and_recsys_run_agrees(airflow, capsys):
    run_dag, data, out, root = airflow
    versions, record = _serving_versions(out), (out / "last_run.json").read_text()
    result = run_dag("2024-01-03")
    assert result.returncode == 0
    assert "No new data since the last run" in result.stdout + result.stderr
    assert _serving_versions(out) == versions and (out / "last_run.json").read_text() == record
    assert cli.main(["run", "--data", data, "--output", str(out),
                     "--config", str(root / "config.yaml")]) == 0
    assert "No new data since the last run" in capsys.readouterr().out


def test_bad_data_fails_the_run_before_any_component_and_serving_is_untouched(airflow):
    run_dag, data, out, _ = airflow
    versions = _serving_versions(out)
    ratings = os.path.join(data, "span-2", "ratings.csv")
    with open(ratings, "a") as handle:
        handle.write("1,2,9,900000000\n")
    result = run_dag("2024-01-04")
    assert result.returncode != 0
    assert f"{ratings}, row 802, field 'rating'" in result.stdout + result.stderr
    assert _serving_versions(out) == versions and not (out / LEASE_FILE).exists()
