"""The run report's plots: matplotlib figures as SVG data URIs, so the page needs no file and no
network (each SVG in its own image keeps its element ids apart from the others')."""

import base64
import datetime
import io
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402 - after the backend is chosen
import matplotlib.pyplot as plt  # noqa: E402

CANDIDATE, BASELINE, ACCENT = "#1f6fb2", "#9aa5b1", "#c2410c"  # accent: the refit, rollbacks
plt.rcParams.update({"svg.fonttype": "none", "font.size": 8, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100})


def _uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _dates(seconds: Sequence[float]) -> List[float]:
    return [mdates.date2num(datetime.datetime.fromtimestamp(s, datetime.timezone.utc))
            for s in seconds]


def histogram(buckets: Sequence[Sequence[float]], dates: bool = False) -> Optional[str]:
    """A numeric feature's histogram: [low, high, count] per bucket (dates: seconds since the
    epoch, shown as dates)."""
    if not buckets:
        return None
    figure, axes = plt.subplots(figsize=(3.4, 1.5))
    lows, highs, counts = zip(*buckets)
    if dates:
        lows, highs = _dates(lows), _dates(highs)
        locator = mdates.AutoDateLocator(maxticks=5)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    widths = [max(high - low, 1e-9) for low, high in zip(lows, highs)]
    axes.bar(lows, counts, width=widths, align="edge", color=CANDIDATE, edgecolor="white",
             linewidth=0.5)
    axes.set_ylabel("examples")
    return _uri(figure)


def by_slice(title: str, candidate: Dict[str, float], baseline: Dict[str, float],
             from_zero: bool = True) -> Optional[str]:
    """A metric per slice, the candidate's bar beside the baseline's (where there is one);
    from_zero=False starts the axis near the smallest value (RMSEs differ in their decimals)."""
    names = sorted(candidate)
    if not names:
        return None
    figure, axes = plt.subplots(figsize=(5.2, 0.22 * len(names) + 0.6))
    rows = range(len(names))
    has_baseline = any(name in baseline for name in names)
    height = 0.4 if has_baseline else 0.7
    axes.barh([r - (height / 2 if has_baseline else 0) for r in rows],
              [candidate[n] for n in names], height=height, color=CANDIDATE, label="candidate")
    if has_baseline:
        axes.barh([r + height / 2 for r in rows], [baseline.get(n, 0.0) for n in names],
                  height=height, color=BASELINE, label="model in service")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=2, frameon=False)
    if not from_zero:
        shown = list(candidate.values()) + [v for n, v in baseline.items() if n in candidate]
        axes.set_xlim(0.95 * min(shown), 1.01 * max(shown))
    axes.set_yticks(list(rows), names)
    axes.invert_yaxis()
    axes.set_xlabel(title)
    return _uri(figure)


def loss_curves(fits: Dict[str, Dict[str, object]]) -> Optional[str]:
    """Each objective's loss per epoch, for the gate's fit and the refit."""
    objectives = sorted({name for fit in fits.values() for name in fit["epoch_losses"]})
    if not objectives:
        return None
    figure, grid = plt.subplots(1, len(objectives), figsize=(3.2 * len(objectives), 1.9),
                                squeeze=False)
    for axes, objective in zip(grid[0], objectives):
        for (name, fit), color in zip(sorted(fits.items()), (CANDIDATE, ACCENT)):
            values = fit["epoch_losses"].get(objective, [])
            axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                      color=color, label=name)
        axes.set_title(objective)
        axes.set_xlabel("epoch")
        axes.legend(frameon=False)
    return _uri(figure)


def history(runs: List[Dict[str, object]], metrics: Sequence[str],
            rollbacks: Sequence[float]) -> Optional[str]:
    """Each metric across the runs (filled: pushed; hollow: not), rollbacks as dashed lines
    at their place between runs (rollbacks: fractional run positions)."""
    if not runs:
        return None
    columns = min(len(metrics), 3)
    rows = -(-len(metrics) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(2.8 * columns, 2.0 * rows),
                                squeeze=False)
    figure.subplots_adjust(hspace=0.7, wspace=0.35)
    positions = range(1, len(runs) + 1)
    for axes, metric in zip(grid.flat, metrics):
        values = [run["metrics"].get(metric) for run in runs]
        shown = [(p, v) for p, v in zip(positions, values) if v is not None]
        if shown:
            axes.plot(*zip(*shown), color=BASELINE, linewidth=1)
        for (position, value), run in zip(zip(positions, values), runs):
            if value is not None:
                axes.plot(position, value, marker="o", markersize=5, color=CANDIDATE,
                          markerfacecolor=CANDIDATE if run["pushed"] else "white")
        for position in rollbacks:
            axes.axvline(position, color=ACCENT, linestyle="--", linewidth=1)
        axes.set_title(metric)
        axes.set_xlabel("run")
        axes.set_xticks(list(positions))
    return _uri(figure)
