"""Writes a run's report, reports/<number>/index.html and the facts it shows (facts.json),
whole or not at all; and finds one for `recsys report`."""

import json
import os
import shutil
import sys
import time
from typing import Dict, Optional

from pipeline.config import PipelineConfig
from pipeline.report import NoReportError
from pipeline.report import facts as report_facts
from pipeline.report.page import render

PAGE, FACTS = "index.html", "facts.json"
PUSHED, NOT_BLESSED, STOPPED, ROLLBACK = "pushed", "not_blessed", "stopped", "rollback"


def report_numbers(config: PipelineConfig):
    if not os.path.isdir(config.reports_dir):
        return []
    return sorted(int(n) for n in os.listdir(config.reports_dir) if n.isdigit())


def report_path(config: PipelineConfig, number: Optional[int] = None) -> str:
    """The page of run `number` (default: the latest)."""
    numbers = report_numbers(config)
    if not numbers:
        raise NoReportError(f"no run report in {config.reports_dir}: `recsys run` writes one")
    if number is None:
        number = numbers[-1]
    if number not in numbers:
        raise NoReportError(f"no report of run {number} in {config.reports_dir}; there are "
                            f"{', '.join(map(str, numbers))}")
    return os.path.join(config.reports_dir, str(number), PAGE)


def _write(config: PipelineConfig, facts: Dict[str, object]) -> str:
    """Renders into a hidden folder, then renames it into place: never half a report."""
    os.makedirs(config.reports_dir, exist_ok=True)
    number = facts["run"]["number"]
    staged = os.path.join(config.reports_dir, f".{number}.partial")
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged)
    try:
        with open(os.path.join(staged, FACTS), "w") as handle:
            json.dump(facts, handle, indent=1)
        with open(os.path.join(staged, PAGE), "w") as handle:
            handle.write(render(facts))
        final = os.path.join(config.reports_dir, str(number))
        os.rename(staged, final)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return os.path.join(final, PAGE)


def report_or_warning(write, *args) -> Optional[str]:
    """The report's path, or None and a warning: what the run or rollback did stands without
    its report (a scheduler would retry a run that pushed)."""
    try:
        return write(*args)
    except Exception as failure:  # noqa: BLE001 - reported, and the outcome kept
        print(f"warning: the report was not written: {type(failure).__name__}: {failure}",
              file=sys.stderr)
        return None


def _run_header(config: PipelineConfig, outcome: str, title: str, verdict: str,
                **more) -> Dict[str, object]:
    """The page's header; title: with {number}, this report's number."""
    numbers = report_numbers(config)
    number = (numbers[-1] + 1) if numbers else 1
    return {"number": number, "outcome": outcome, "title": title.format(number=number),
            "verdict": verdict, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "data_dir": config.raw_folders[0], "output_dir": config.output_dir,
            **{"error": None, "note": None, "stopped_before": None, **more}}


def write_run_report(config: PipelineConfig, seconds: Dict[str, float],
                     peak_mb: Dict[str, float], error: Optional[str] = None) -> str:
    """The report of the run that just ended: completed, or stopped by its data (error)."""
    from pipeline.results import open_store
    from pipeline.serving import item_titles

    store = open_store(config)
    facts: Dict[str, object] = {"data": report_facts.data_facts(store, config.spanned)}
    if error is None:
        gate = report_facts.gate_record(store)
        evaluation = report_facts.evaluation_facts(config, gate)
        pushed = evaluation["pushed_dir"]
        verdict = (f"Pushed: version {os.path.basename(pushed)} serves now" if pushed else
                   "Not pushed: the model in service is unchanged")
        facts.update(
            evaluation=evaluation,
            training=report_facts.training_facts(store, seconds, peak_mb),
            model=report_facts.model_facts(gate, item_titles(config.raw_folders[0])))
        facts["run"] = _run_header(config, PUSHED if pushed else NOT_BLESSED, "Run {number}",
                                   verdict)
    else:
        facts.update(evaluation=None, training=None, model=None)
        facts["run"] = _run_header(
            config, STOPPED, "Run {number}", "Stopped by its data: nothing trained, nothing "
            "pushed", error=error, stopped_before="the run stopped at the validation gate")
    facts["history"] = report_facts.history_facts(config)
    return _write(config, facts)


def _pushed_by(config: PipelineConfig, version: str) -> Optional[Dict[str, object]]:
    """The facts of the run that pushed `version`, with its number; None without its report."""
    for number in reversed(report_numbers(config)):
        with open(os.path.join(config.reports_dir, str(number), FACTS)) as handle:
            facts = json.load(handle)
        pushed = (facts.get("evaluation") or {}).get("pushed_dir")
        if facts["run"]["outcome"] == PUSHED and pushed and os.path.basename(pushed) == version:
            return facts
    return None


def write_rollback_report(config: PipelineConfig, new_version: str, version: str) -> str:
    """A rollback's report: the data, evaluation, training and model of the run that pushed
    `version`, and the history as it is now."""
    earlier = _pushed_by(config, version) or {}
    verdict = f"Rollback: version {new_version} serves a copy of version {version}"
    if earlier:
        number = earlier["run"]["number"]
        run = _run_header(config, ROLLBACK, f"Rollback to version {version} (run {number}'s)",
                          verdict, note=f"Data, evaluation, training and model: those of run "
                          f"{number}, whose model serves again.")
    else:
        run = _run_header(config, ROLLBACK, f"Rollback to version {version}", verdict,
                          stopped_before="no report in this output folder of the run that "
                          f"pushed version {version}")
    facts = {section: earlier.get(section)
             for section in ("data", "evaluation", "training", "model")}
    facts.update(run=run, history=report_facts.history_facts(config))
    return _write(config, facts)
