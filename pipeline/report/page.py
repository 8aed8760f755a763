"""Renders a report's facts (facts.py) into one self-contained HTML page: the template
(page.html) and the plots (charts.py), nothing fetched at view time."""

import os
import time
from typing import Dict, List

import jinja2

from components import features as F
from components.evaluator.metrics import MAE_NAME, RMSE_NAME
from pipeline.report import charts
from pipeline.results import COUNT_NAME

HISTORY_METRICS = ("rmse", "mae", "ndcg@10", "precision@10", "recall@10", "map@10")
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.dirname(os.path.abspath(__file__))),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENVIRONMENT.filters["date"] = lambda seconds: time.strftime("%Y-%m-%d", time.gmtime(seconds))
_TEMPLATE = _ENVIRONMENT.get_template("page.html")


def _history_runs(history: Dict[str, object]) -> List[Dict[str, object]]:
    return [{"metrics": run["metrics"], "pushed": bool(run["pushed_version"])}
            for run in history["runs"]]


def rollback_positions(history: Dict[str, object]) -> List[float]:
    """Where each rollback falls on the runs' axis: halfway after the last run before it."""
    finished = [run["finished_time"] for run in history["runs"]]
    return [sum(t <= rollback["time"] for t in finished) + 0.5
            for rollback in history["rollbacks"]]


def _plots(facts: Dict[str, object]) -> Dict[str, object]:
    plots: Dict[str, object] = {"histograms": {}}
    data = facts.get("data") or {}
    train = (data.get("splits") or {}).get("train", {})
    for feature in train.get("features", []):
        if feature["kind"] == "numeric":
            plots["histograms"][feature["name"]] = charts.histogram(
                feature["histogram"], dates=feature["name"] == F.TIMESTAMP)
    evaluation = facts.get("evaluation")
    if evaluation:
        rating, ranking = evaluation["rating"], evaluation["ranking"]
        metric = evaluation["thresholds"]["ranking_metric"]
        plots["rmse_slices"] = charts.by_slice(
            "RMSE", {k: v[RMSE_NAME] for k, v in rating["slices"].items()
                     if k != "overall" and RMSE_NAME in v},
            {k: v[RMSE_NAME] for k, v in rating["baseline_slices"].items() if RMSE_NAME in v},
            from_zero=False)
        plots["ranking_slices"] = charts.by_slice(
            metric, {k: v[metric] for k, v in ranking["slices"].items()},
            {k: v[metric] for k, v in ranking["baseline_slices"].items()})
    training = facts.get("training")
    if training:
        plots["losses"] = charts.loss_curves(training["fits"])
    history = facts["history"]
    plots["history"] = charts.history(_history_runs(history), HISTORY_METRICS,
                                      rollback_positions(history))
    return plots


def render(facts: Dict[str, object]) -> str:
    return _TEMPLATE.render(facts=facts, plots=_plots(facts), history_metrics=HISTORY_METRICS,
                            names={"rmse": RMSE_NAME, "mae": MAE_NAME, "count": COUNT_NAME,
                                   "timestamp": F.TIMESTAMP})
