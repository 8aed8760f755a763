"""The run report through real runs: a first run, a gated-out run, a second push, a rollback
and a run its data stopped, each page opened in headless Chromium."""

import json
import os
import re
import shutil

import pytest

from components.evaluator.metrics import MAE_NAME, RMSE_NAME
from data import raw_format as R
from pipeline import cli
from pipeline.report import page, writer
from tests.end_to_end.chromium import screenshot

CONFIG = """
training:
  epochs: 8
  batch_size: 512
evaluation:  # the second push must pass whatever the first model scored
  max_rmse: 1.0
  max_rmse_increase: 0.5
  min_ranking: 0.0
  max_ranking_drop: 0.5
"""
WORSE = CONFIG.replace("epochs: 8", "epochs: 1\n  learning_rate: 0.0").replace(
    "max_rmse: 1.0", "max_rmse: 0.5")
SECOND = CONFIG.replace("epochs: 8", "epochs: 6")
SECTIONS = ("data", "evaluation", "training", "model", "history")


def _config(folder, name, text):
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def reports(synthetic_folder, tmp_path_factory):
    """Runs 1 (pushed), 2 (gated out), 3 (pushed), a rollback to run 1's version (4) and a run
    stopped by an anomaly (5); returns (output folder, each report's facts, the pushed versions)."""
    root = tmp_path_factory.mktemp("report")
    output = str(root / "out")

    def run(data, text, name, code=0):
        assert cli.main(["run", "--data", data, "--output", output,
                         "--config", _config(root, name, text)]) == code

    anomalous = root / "anomalous"
    shutil.copytree(synthetic_folder, anomalous)
    users = (anomalous / R.USERS_FILE).read_text().splitlines()
    first = users[1].split(",")
    first[3] = "astronaut"  # occupation outside the schema's closed domain
    (anomalous / R.USERS_FILE).write_text("\n".join([users[0], ",".join(first)] + users[2:]) + "\n")
    run(synthetic_folder, CONFIG, "first")
    run(synthetic_folder, WORSE, "worse")
    run(synthetic_folder, SECOND, "second")
    versions = sorted(os.listdir(os.path.join(output, "serving")), key=int)
    assert cli.main(["rollback", versions[0], "--output", output]) == 0
    run(str(anomalous), CONFIG, "anomalous", code=cli.EXIT_ANOMALIES)
    facts = {}
    for number in range(1, 6):
        with open(os.path.join(output, "reports", str(number), writer.FACTS)) as handle:
            facts[number] = json.load(handle)
    return output, facts, versions


def test_each_run_and_the_rollback_wrote_a_report_of_its_outcome(reports):
    output, facts, versions = reports
    assert [facts[n]["run"]["outcome"] for n in range(1, 6)] == [
        writer.PUSHED, writer.NOT_BLESSED, writer.PUSHED, writer.ROLLBACK, writer.STOPPED]
    assert sorted(os.listdir(os.path.join(output, "reports"))) == ["1", "2", "3", "4", "5"]
    assert facts[2]["evaluation"]["blessed"] is False
    assert any("RMSE" in failure and "absolute threshold" in failure
               for failure in facts[2]["evaluation"]["failures"])
    assert facts[4]["run"]["title"] == f"Rollback to version {versions[0]} (run 1's)"
    assert facts[4]["evaluation"] == facts[1]["evaluation"]  # the model serving again
    assert facts[5]["evaluation"] is None and facts[5]["training"] is None


def test_the_evaluation_is_the_runs_own_against_the_model_in_service(reports):
    output, facts, _ = reports
    with open(os.path.join(output, "last_run.json")) as handle:
        last = json.load(handle)  # run 3's: the stopped run completed nothing
    evaluation = facts[3]["evaluation"]
    assert evaluation["rating"]["candidate"] == last["metrics"]
    assert evaluation["ranking"]["candidate"] == last["ranking"]
    assert evaluation["rating"]["baseline"] and evaluation["ranking"]["baseline"]
    slices = evaluation["ranking"]["slices"]
    assert {"gender=F", "gender=M"} <= set(slices)
    assert sum(slices[f"gender={g}"]["users"] for g in "FM") == (
        facts[3]["model"]["top_k"]["users"])
    assert facts[1]["evaluation"]["rating"]["baseline"] == {}


def test_the_data_section_shows_statistics_drift_and_the_rule_that_fired(reports):
    _, facts, _ = reports
    features = {f["name"]: f for f in facts[1]["data"]["splits"]["train"]["features"]}
    assert features["rating"]["kind"] == "numeric" and features["rating"]["histogram"]
    assert features["gender"]["kind"] == "categorical" and features["gender"]["top_values"]
    assert facts[1]["data"]["drift"] is None  # nothing earlier to compare with
    drift = facts[5]["data"]["drift"]
    assert drift["against"] == "the previous run's data"
    occupation = next(row for row in drift["features"] if row["feature"] == "occupation")
    assert occupation["threshold"] is not None and not occupation["fired"]
    assert [(a["feature"], a["rule"]) for a in facts[5]["data"]["anomalies"]] == [
        ("occupation", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")] * len(facts[5]["data"]["anomalies"])
    assert facts[5]["data"]["anomalies"]


def test_training_and_model_sections_hold_losses_times_memory_and_top_10s(reports):
    _, facts, _ = reports
    training = facts[1]["training"]
    assert len(training["fits"]["gate"]["epoch_losses"]["rating_mse"]) == 8
    assert training["fits"]["refit"]["epoch_losses"]
    components = {c["name"]: c for c in training["components"]}
    assert components["Trainer"]["seconds"] > 0 and components["Trainer"]["peak_mb"] > 100
    model = facts[1]["model"]
    assert 0 < model["top_k"]["coverage"] <= 1 and 0 <= model["top_k"]["popular_share"] <= 1
    assert model["examples"] and all(len(e["items"]) == 10 and e["items"][0]["title"] != "?"
                                     for e in model["examples"])


def test_the_history_marks_pushes_and_the_rollback(reports):
    _, facts, versions = reports
    history = facts[5]["history"]
    assert [bool(r["pushed_version"]) for r in history["runs"]] == [True, False, True]
    assert [r["revoked"] for r in history["runs"]] == [False, False, True]
    assert all(set(page.HISTORY_METRICS) <= set(r["metrics"]) for r in history["runs"])
    # Each run's own figures: not those of a later run that read its model as the baseline.
    for run, number in zip(history["runs"], (1, 2, 3)):
        candidate = facts[number]["evaluation"]["rating"]["candidate"]
        assert run["metrics"]["rmse"] == candidate[RMSE_NAME]
        assert run["metrics"]["mae"] == candidate[MAE_NAME]
    assert [(r["copy_of"]) for r in history["rollbacks"]] == [versions[0]]
    assert history["serving"] == history["rollbacks"][0]["version"]
    assert page.rollback_positions(history) == [3.5]  # drawn after the third run, when it happened


def test_recsys_report_prints_the_latest_or_a_given_runs_page(reports, capsys, monkeypatch):
    output, _, _ = reports
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli.main(["report", "--output", output]) == 0
    assert capsys.readouterr().out.strip() == os.path.join(output, "reports", "5", writer.PAGE)
    assert opened == []  # no display: the path only
    monkeypatch.setenv("DISPLAY", ":0")
    assert cli.main(["report", "--run", "2", "--output", output]) == 0
    page = os.path.join(output, "reports", "2", writer.PAGE)
    assert capsys.readouterr().out.strip() == page
    assert opened == ["file://" + os.path.abspath(page)]
    assert cli.main(["report", "--run", "9", "--output", output]) == cli.EXIT_NO_MODEL
    assert "no report of run 9" in capsys.readouterr().err


def test_a_report_that_fails_is_a_warning_and_leaves_no_half_report(
        reports, synthetic_folder, capsys, monkeypatch):
    """What `recsys run` does after a run (the run's outcome printed and kept: it exits 0)."""
    from pipeline.config import load_config

    output, _, _ = reports

    def broken(_facts):
        raise RuntimeError("rendering broke")

    monkeypatch.setattr(writer, "render", broken)
    cli._write_report(load_config(data_dir=synthetic_folder, output_dir=output), {}, {})
    assert capsys.readouterr().err.strip() == (
        "warning: the report was not written: RuntimeError: rendering broke")
    assert sorted(os.listdir(os.path.join(output, "reports"))) == ["1", "2", "3", "4", "5"]


def _external_references(page: str):
    return [ref for ref in re.findall(r'(?:src|href)="([^"]*)"', page)
            if not ref.startswith(("data:", "#"))]


def test_every_page_is_self_contained(reports):
    output, _, _ = reports
    for number in range(1, 6):
        with open(os.path.join(output, "reports", str(number), writer.PAGE)) as handle:
            page = handle.read()
        assert _external_references(page) == [] and "<script" not in page


@pytest.mark.parametrize("number, name", [(1, "first_run"), (2, "gated_out"), (4, "rollback"),
                                          (5, "stopped_by_data")])
def test_the_page_renders_every_section_in_chromium(reports, browser, number, name, tmp_path):
    from selenium.webdriver.common.by import By

    output, facts, versions = reports
    browser.get("file://" + os.path.join(output, "reports", str(number), writer.PAGE))
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    text = {section: browser.find_element(By.ID, section).text for section in SECTIONS}
    assert all(text.values())
    images = browser.find_elements(By.CSS_SELECTOR, "img.plot")
    assert images and all(browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image)
        for image in images)
    if number == 5:
        assert "ENUM_TYPE_UNEXPECTED_STRING_VALUES" in text["data"]
        assert "Not reached" in text["evaluation"] and "Not reached" in text["model"]
    else:
        assert "coverage" in text["model"] and "Trainer" in text["training"]
    if number == 2:
        assert "Not blessed" in text["evaluation"] and "absolute threshold" in text["evaluation"]
    if number == 4:
        assert f"a copy of version {versions[0]}" in text["history"]
    screenshot(browser, f"report_{name}", tmp_path, full_page=True)

