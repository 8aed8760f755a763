"""What every benchmark shares: the machine it ran on, `recsys run` in a fresh process as a user
runs it, peak memory per component, and the results folder's reports."""

import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from typing import Dict

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
CHILD_SAMPLE_SECONDS = 1.0


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


class PeakMemory:
    """Peak RSS per component: this process's high-water mark (the kernel's VmHWM, reset when a
    component starts) plus the peak of its child processes (Beam's multi-processing workers),
    sampled each CHILD_SAMPLE_SECONDS: sampling the whole process tree often slows the
    components it measures."""

    def __init__(self):
        import psutil

        self._process = psutil.Process()
        self.current = "startup"
        self.peaks: Dict[str, float] = {}
        self._children_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_children, daemon=True)

    @staticmethod
    def _own_peak() -> int:
        with open("/proc/self/status") as handle:
            return int(re.search(r"VmHWM:\s+(\d+) kB", handle.read()).group(1)) * 1024

    def _sample_children(self) -> None:
        while not self._stop.wait(CHILD_SAMPLE_SECONDS):
            total = 0
            for child in self._process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                    pass
            self._children_peak = max(self._children_peak, total)

    def start(self, component: str) -> None:
        """Closes the current component's peak and starts measuring the next one's."""
        self.peaks[self.current] = max(self.peaks.get(self.current, 0.0),
                                       (self._own_peak() + self._children_peak) / 2**20)
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        self._children_peak = 0
        self.current = component

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.start("end")
        self._stop.set()
        self._thread.join()


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
