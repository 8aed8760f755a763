"""The served version, as TF Serving keeps it: the newest numbered folder under the serving
folder, loaded in the background, smoke-tested with real requests, then swapped in at once.
A version that fails to load or answer is refused and the one in service keeps serving; it is
tried again only once its folder changes (a push still being written finishes)."""

import dataclasses
import logging
import os
import threading
from typing import Dict, Optional, Tuple

from components.pusher.versions import numbered_versions
from pipeline.serving import Recommender

log = logging.getLogger("recsys.serve")


@dataclasses.dataclass(frozen=True)
class Served:
    version: str
    recommender: Recommender


def _stamp(folder: str) -> Tuple:
    """What changes when a version folder is written to: its files' sizes and times."""
    entries = []
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                info = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            entries.append((os.path.relpath(os.path.join(root, name), folder), info.st_size,
                            info.st_mtime_ns))
    return tuple(sorted(entries))


def smoke_test(recommender: Recommender) -> None:
    """Real requests to the signatures a server answers; raises if one fails or is empty."""
    user, item = recommender.ids("user")[0], recommender.ids("item")[0]
    if not recommender.recommend([user], 10)[0]:
        raise RuntimeError(f"recommend for user {user} returned nothing")
    if not recommender.similar_items([item], 10)[0]:
        raise RuntimeError(f"similar_items for item {item} returned nothing")


class ModelVersions:
    """The version in service, and what became of every newer one."""

    def __init__(self, serving_dir: str):
        self.serving_dir = serving_dir
        self._served: Optional[Served] = None
        self._refused: Dict[str, Tuple[Tuple, str]] = {}  # version → (stamp, why)
        self._lock = threading.Lock()  # one load at a time

    @property
    def served(self) -> Optional[Served]:
        return self._served

    def refused(self) -> Dict[str, str]:
        return {version: why for version, (_, why) in self._refused.items()}

    def poll(self) -> Optional[str]:
        """Loads the newest version if it is not the one served; returns what changed
        ('served N', 'refused N: why', several joined by '; '), None when nothing did. With
        nothing served yet (a server starting on a damaged newest version), older versions are
        tried in turn, as a server that had been running would still serve one of them."""
        with self._lock:
            versions = numbered_versions(self.serving_dir)
            served = self._served.version if self._served else None
            if not versions or versions[-1] == served:
                return None
            events = []
            for version in versions[::-1] if served is None else versions[-1:]:
                event = self._try(version, served)
                if event:
                    events.append(event)
                if self._served is not None:
                    break
            return "; ".join(events) or None

    def _try(self, version: str, served: Optional[str]) -> Optional[str]:
        folder = os.path.join(self.serving_dir, version)
        stamp = _stamp(folder)
        if version in self._refused and self._refused[version][0] == stamp:
            return None
        try:
            recommender = Recommender(folder)
            smoke_test(recommender)
        except Exception as error:  # noqa: BLE001 - any failure refuses the version
            why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            self._refused[version] = (stamp, why)
            log.warning("version %s refused, %s keeps serving: %s", version, served, why)
            return f"refused {version}: {why}"
        self._refused.pop(version, None)
        self._served = Served(version, recommender)  # one assignment: the swap
        log.info("serving version %s (was %s)", version, served)
        return f"served {version}"

    def watch(self, interval: float, stop: threading.Event) -> threading.Thread:
        """Polls every interval seconds in a background thread until stop is set."""
        def loop():
            while not stop.wait(interval):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001 - the watcher must outlive a bad poll
                    log.exception("polling %s failed", self.serving_dir)

        thread = threading.Thread(target=loop, name="model-versions", daemon=True)
        thread.start()
        return thread
