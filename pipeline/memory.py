"""Peak memory per component of a run in this process (the run report's, and make bench's)."""

import re
import threading
from typing import Dict

CHILD_SAMPLE_SECONDS = 1.0


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
        # Per process: this one's peak, and the largest single child's (MB per component).
        self.own_peaks: Dict[str, float] = {}
        self.child_peaks: Dict[str, float] = {}
        self._children_peak = self._largest_child = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_children, daemon=True)

    @staticmethod
    def _own_peak() -> int:
        with open("/proc/self/status") as handle:
            return int(re.search(r"VmHWM:\s+(\d+) kB", handle.read()).group(1)) * 1024

    def _sample_children(self) -> None:
        while not self._stop.wait(CHILD_SAMPLE_SECONDS):
            sizes = []
            for child in self._process.children(recursive=True):
                try:
                    sizes.append(child.memory_info().rss)
                except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                    pass
            self._children_peak = max(self._children_peak, sum(sizes))
            self._largest_child = max([self._largest_child] + sizes)

    def start(self, component: str) -> None:
        """Closes the current component's peak and starts measuring the next one's."""
        own = self._own_peak()
        self.peaks[self.current] = max(self.peaks.get(self.current, 0.0),
                                       (own + self._children_peak) / 2**20)
        self.own_peaks[self.current] = max(self.own_peaks.get(self.current, 0.0), own / 2**20)
        self.child_peaks[self.current] = max(self.child_peaks.get(self.current, 0.0),
                                             self._largest_child / 2**20)
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        self._children_peak = self._largest_child = 0
        self.current = component

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.start("end")
        self._stop.set()
        self._thread.join()
