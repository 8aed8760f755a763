"""What the run report adds to `recsys run`: the seconds the command itself prints for writing
it, beside the whole run's, for a first run and for a second run into the same output folder
(a baseline, drift and history to show). Writes bench/results/report.{json,md}.

Usage: python -m bench.report_bench --data DIR [--runs 3]
"""

import argparse
import os
import re
import statistics
import tempfile

from bench.common import machine, recsys_run, write_report

TARGET_SECONDS = 2.0
_REPORT = re.compile(r"^Report: (\S+) \(([\d.]+) s;", re.MULTILINE)
# A setting the Trainer reads: the second run trains again on the same data.
SECOND_RUN_CONFIG = "training:\n  seed: 43\n"


def _report_seconds(printed: str) -> float:
    match = _REPORT.search(printed)
    if match is None:
        raise RuntimeError("`recsys run` printed no report line:\n" + printed[-2000:])
    return float(match.group(2))


def one_repeat(data_dir: str, scratch: str):
    output = os.path.join(scratch, "output")
    first_run, printed = recsys_run(data_dir, output, "")
    config = os.path.join(scratch, "second.yaml")
    with open(config, "w") as handle:
        handle.write(SECOND_RUN_CONFIG)
    second_run, printed_again = recsys_run(data_dir, output, config)
    page = _REPORT.search(printed_again).group(1)
    return {"first": {"run_seconds": first_run, "report_seconds": _report_seconds(printed)},
            "second": {"run_seconds": second_run,
                       "report_seconds": _report_seconds(printed_again)},
            "page_kb": os.path.getsize(page) / 1024}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    repeats = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as scratch:
            repeats.append(one_repeat(args.data, scratch))
    rows = []
    for kind in ("first", "second"):
        report = [r[kind]["report_seconds"] for r in repeats]
        run = [r[kind]["run_seconds"] for r in repeats]
        rows.append(f"| {kind} run | {statistics.median(report):.2f} ({min(report):.2f}–"
                    f"{max(report):.2f}) | {statistics.median(run):.1f} | "
                    f"{'met' if max(report) <= TARGET_SECONDS else 'MISSED'} |")
    info = machine()
    table = "\n".join([
        f"Run report on {args.data}, {args.runs} repeats; {info['cpu']}, {info['cores']} cores",
        "",
        f"| run | report s, median (range) | whole `recsys run` s, median "
        f"| ≤ {TARGET_SECONDS:g} s |",
        "|---|---|---|---|", *rows, "",
        f"Page size: {statistics.median(r['page_kb'] for r in repeats):.0f} KB", ""])
    write_report("report", {"machine": info, "data": args.data, "repeats": repeats}, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
