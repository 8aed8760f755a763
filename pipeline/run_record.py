"""What a completed run leaves in the output folder (last_run.json), and the key that tells
whether anything it read changed since: every orchestrator skips a run with nothing new."""

import json
import os
from typing import Dict, Optional

LAST_RUN_FILE = "last_run.json"


def check_raw_folders(config) -> None:
    """Validates the raw folders a run reads, before anything is run or written (a DataError
    names file, row, field and rule), and prints their counts."""
    from data.validate import validate_folder

    for folder in config.raw_folders:
        summary = validate_folder(folder)
        print(f"Data {folder}: {summary.ratings:,} ratings, {summary.users:,} users, "
              f"{summary.items:,} items")


def nothing_new(config, key: str) -> bool:
    """Whether the last completed run read the same data, code and settings; says so."""
    previous = last_run(config)
    if previous.get("run_key") != key:
        return False
    print(f"No new data since the last run (and no new code or settings): nothing to train. "
          f"Model in service: {previous.get('pushed_dir') or 'none'}")
    return True


def run_key(config) -> str:
    """Changes with the data, the code or the settings a run reads."""
    from pipeline.fingerprint import run_fingerprint, source_fingerprint

    return run_fingerprint(config, source_fingerprint())


def last_run(config) -> dict:
    """What the last completed run into this output folder recorded ({} if none)."""
    path = os.path.join(config.output_dir, LAST_RUN_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return json.load(handle)


def record_run(config, key: str, durations: Optional[Dict[str, float]] = None):
    """Writes last_run.json from the run's results in ML Metadata; returns those results."""
    from pipeline.results import latest_run_result

    result = latest_run_result(config)
    record = {"run_key": key, "data_dir": config.raw_folders[0], "seconds": durations or {},
              "metrics": result.metrics,
              "baseline_metrics": result.baseline_metrics, "ranking": result.ranking,
              "baseline_ranking": result.baseline_ranking, "blessed": result.blessed,
              "pushed_dir": result.pushed_dir, "gate_failures": result.gate_failures}
    path = os.path.join(config.output_dir, LAST_RUN_FILE)
    with open(path + ".tmp", "w") as handle:
        json.dump(record, handle, indent=2)
    os.replace(path + ".tmp", path)
    return result
