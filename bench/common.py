"""What every benchmark shares: the machine it ran on, `recsys run` in a fresh process as a user
runs it, and the results folder's reports (peak memory per component: pipeline/memory.py)."""

import json
import os
import platform
import subprocess
import sys
import time
from typing import Dict

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine() -> Dict[str, object]:
    import psutil

    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "system": platform.platform()}


def recsys_run(data_dir: str, output_dir: str, config_file: str):
    """`recsys run` in a fresh process, as a user runs it: (wall seconds, its output)."""
    command = [os.path.join(os.path.dirname(sys.executable), "recsys"), "run",
               "--data", data_dir, "--output", output_dir]
    command += ["--config", config_file] if config_file else []
    start = time.monotonic()
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.monotonic() - start, finished.stdout


def write_report(name: str, report, table: str) -> None:
    """bench/results/<name>.json and <name>.md; the table is printed too."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(RESULTS_DIR, f"{name}.md"), "w") as handle:
        handle.write(table)
    print(table)
