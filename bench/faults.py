"""Fault injection: the pipeline killed in each component, artifacts damaged, the disk full,
malformed batches and commands run at once, each through the commands a user runs (`recsys run`,
`ingest`, `rollback`, `recommend` in processes of their own); after each fault, the next
run must complete with nothing lost and only complete, blessed models ever served.
Writes bench/results/faults.{json,md}.

Usage: python -m bench.faults [--only kill,damage,disk,concurrency] [--work DIR]

Each scenario starts from a copy of one base: a spanned synthetic data folder whose last run
pushed a model. A new span is ingested, then the fault; then the checks:
- served: every numbered serving/ version loads and answers, and the highest is the model in
  service before the fault or a model the release gate blessed (by SavedModel fingerprint);
- data: every span's ratings.csv unchanged (or the new span complete), and once the pipeline
  has run again, the model trained on every span, each once;
- recovery: a run after the fault (after the fix the error message names, where it names
  one) exits 0 and pushes a model that serves.
"""

import argparse
import csv
import dataclasses
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional

from bench.common import machine, write_report

RECSYS = os.path.join(os.path.dirname(sys.executable), "recsys")
KILLED_COMPONENTS = ("FileBasedExampleGen", "StatisticsGen", "Transform", "Trainer",
                     "Evaluator", "ReleaseGate", "Pusher")
# Every run blessed (the faults are about what survives, not the gate) and quick.
CONFIG = """
training:
  epochs: 2
  batch_size: 512
  autoencoder_epochs: 5
evaluation:
  max_rmse: 1.2
  max_rmse_increase: 1.0
  min_ranking: 0.0
  max_ranking_drop: 1.0
"""
USERS, ITEMS, RATINGS, BATCH = 200, 150, 8000, 800
DISK_MB = 512  # the world with two runs' outputs is ~20 MB


@dataclasses.dataclass
class Outcome:
    fault: str
    runs: int = 0  # commands run, the faulted ones and the recovery
    survived: bool = False
    data_lost: int = 0  # ratings missing from the data or the model's training spans
    wrong_model_served: int = 0  # checks where serving/ held a broken or unblessed highest
    note: str = ""


def _batch(latest_span: str, path: str, shift: int, seed: int, size: int = BATCH) -> str:
    """`size` of the latest span's ratings again, `shift` seconds later: new ratings."""
    with open(os.path.join(latest_span, "ratings.csv")) as handle:
        rows = list(csv.reader(handle))[1:]
    pick = random.Random(seed)
    # The span's own ratings, reordered, when there are enough: no drift for the gate to stop.
    chosen = pick.sample(rows, size) if size <= len(rows) else pick.choices(rows, k=size)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for row in chosen:
            writer.writerow([row[0], row[1], row[2], int(row[3]) + shift])
    return path


class World:
    """One scenario's data folder, output folder and settings, and the commands on them."""

    def __init__(self, root: str):
        self.root, self.data, self.output = root, os.path.join(root, "data"), os.path.join(
            root, "output")
        self.config = os.path.join(root, "config.yaml")
        self.commands = 0

    def args(self) -> List[str]:
        return ["--data", self.data, "--output", self.output, "--config", self.config]

    def recsys(self, *command: str) -> subprocess.CompletedProcess:
        self.commands += 1
        return subprocess.run([RECSYS, *command, *self.args()], capture_output=True, text=True)

    def batch_file(self, seed: int, size: int = BATCH) -> str:
        from data import spans

        return _batch(spans.latest_folder(self.data), os.path.join(self.root, f"b{seed}.csv"),
                      (len(self.spans()) + seed) * 10**7, seed, size)

    def ingest_next(self, seed: int, size: int = BATCH) -> subprocess.CompletedProcess:
        return self.recsys("ingest", self.batch_file(seed, size))

    def spans(self) -> List[str]:
        from data import spans

        return [os.path.basename(folder) for _, folder in spans.spans(self.data)]

    def span_digests(self) -> Dict[str, str]:
        digests = {}
        for name in self.spans():
            with open(os.path.join(self.data, name, "ratings.csv"), "rb") as handle:
                digests[name] = hashlib.sha256(handle.read()).hexdigest()
        return digests

    def ratings_in(self, span: str) -> int:
        with open(os.path.join(self.data, span, "ratings.csv")) as handle:
            return sum(1 for _ in handle) - 1

    def pipeline_config(self):
        from pipeline.config import load_config

        return load_config(self.config, data_dir=self.data, output_dir=self.output)


def _versions(world: World) -> List[str]:
    from components.pusher.versions import numbered_versions

    return numbered_versions(os.path.join(world.output, "serving"))


def _blessed_fingerprints(world: World) -> set:
    """SavedModel fingerprints of the models the release gate blessed (rollbacks included:
    a revoked model was blessed when it was pushed)."""
    from components.pusher.versions import fingerprint
    from pipeline.history import run_history
    from pipeline.results import open_store

    config = world.pipeline_config()
    records = run_history(config)
    if not records:
        return set()
    models = open_store(config).get_artifacts_by_id([r.model_id for r in records
                                                     if r.blessed or r.revoked])
    return {fingerprint(os.path.join(m.uri, "Format-Serving")) for m in models}


def served_check(world: World, before: Optional[str]) -> List[str]:
    """What is wrong with serving/: versions that do not load or answer, a highest version
    that is neither the one served before nor a blessed model."""
    from components.pusher.versions import fingerprint
    from pipeline.server.versions import smoke_test
    from pipeline.serving import Recommender

    problems = []
    serving = os.path.join(world.output, "serving")
    for version in _versions(world):
        try:
            smoke_test(Recommender(os.path.join(serving, version)))
        except Exception as error:  # noqa: BLE001 - any failure is a broken version
            problems.append(f"version {version} does not serve: {str(error)[:200]}")
    versions = _versions(world)
    if versions and versions[-1] != before:
        digest = fingerprint(os.path.join(serving, versions[-1]))
        if digest is None or digest not in _blessed_fingerprints(world):
            problems.append(f"version {versions[-1]} is not a model the release gate blessed")
    return problems


def trained_spans(world: World) -> List[int]:
    """Spans of the Examples the latest Transform read, one entry per artifact (a span read
    twice would appear twice)."""
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.results import open_store
    from pipeline.validated_spans import span_of

    store = open_store(world.pipeline_config())
    kinds = {t.id for t in store.get_execution_types() if t.name.endswith("Transform")}
    done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    latest = max((e for e in store.get_executions() if e.type_id in kinds
                  and e.last_known_state in done), key=lambda e: e.id)
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids([latest.id])
              if e.type == metadata_store_pb2.Event.INPUT]
    return sorted(span for span in (span_of(a) for a in store.get_artifacts_by_id(inputs))
                  if span is not None)


def lost_ratings(world: World, digests_before: Dict[str, str]) -> int:
    """Ratings of spans that changed or vanished, and of spans the last model did not train
    on (or trained on twice)."""
    now = world.span_digests()
    lost = sum(world.ratings_in(name) if name in now else 0
               for name, digest in digests_before.items() if now.get(name) != digest)
    lost += sum(1 for name in digests_before if name not in now)
    spans = trained_spans(world)
    expected = sorted(int(name.split("-")[1]) for name in now)
    if spans != expected:
        lost += sum(world.ratings_in(f"span-{s}") for s in set(expected) ^ set(spans))
        lost += sum(world.ratings_in(f"span-{s}") for s in set(spans) if spans.count(s) > 1)
    return lost


def _start_run(world: World) -> subprocess.Popen:
    world.commands += 1
    return subprocess.Popen([RECSYS, "run", *world.args()], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True)


class RunWatcher:
    """Reads a running `recsys run`'s progress lines in a thread; `started(c)` waits for the
    line saying component c is running."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.lines, self._events = process, [], {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _event(self, component: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(component, threading.Event())

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            if line.rstrip().endswith(" ..."):
                self._event(line.split("] ", 1)[-1][:-5].strip()).set()

    def started(self, component: str, timeout: float = 600) -> bool:
        return self._event(component).wait(timeout)

    def finish(self) -> int:
        code = self.process.wait()
        self._thread.join(10)
        return code

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.finish()

    def output(self) -> str:
        return "".join(self.lines)


def _recover(world: World, outcome: Outcome, digests: Dict[str, str], before: Optional[str],
             expect_push: bool = True) -> None:
    """The run after the fault: completes, serves a blessed model, trains on every span."""
    rerun = world.recsys("run")
    outcome.runs = world.commands
    problems = served_check(world, before)
    outcome.wrong_model_served += bool(problems)
    outcome.data_lost += lost_ratings(world, digests)
    pushed = _versions(world) and _versions(world)[-1] != before
    outcome.survived = rerun.returncode == 0 and not problems and (pushed or not expect_push)
    if rerun.returncode != 0:
        outcome.note += f" rerun exit {rerun.returncode}: {rerun.stderr.strip()[:300]}"
    outcome.note += "".join(f" {p}." for p in problems)


def _component_seconds(printed: str) -> Dict[str, float]:
    seconds = {}
    for line in printed.splitlines():
        if " done in " in line:
            name, value = line.split("] ", 1)[-1].split(" done in ")
            seconds[name.strip()] = float(value.split()[0])
    return seconds


def kill_during(component: str, delay: Callable[[], float]) -> Callable[[World], Outcome]:
    def scenario(world: World) -> Outcome:
        outcome = Outcome(f"SIGKILL during {component}")
        world.ingest_next(seed=11)
        digests, before = world.span_digests(), (_versions(world) or [None])[-1]
        watcher = RunWatcher(_start_run(world))
        if not watcher.started(component):
            watcher.finish()
            outcome.note = f"the run never reached {component}: {watcher.output()[-300:]}"
            return outcome
        landed = _kill_after(watcher, world, component, delay())
        problems = served_check(world, before)
        outcome.wrong_model_served += bool(problems)
        if (_versions(world) or [None])[-1] != before:
            outcome.note += " killed after the new version was published;"
        outcome.note += f" {landed}"
        history = world.recsys("history")
        outcome.note += _history_note(history)
        _recover(world, outcome, digests, before)
        return outcome

    return scenario


def _kill_after(watcher: RunWatcher, world: World, component: str, seconds: float) -> str:
    """Kills the run `seconds` into the component; the Pusher's kill lands while it copies
    (the moment a staging folder appears), if the poll catches one."""
    from components.pusher.versions import STAGING_PREFIX

    if component == "Pusher":
        serving = os.path.join(world.output, "serving")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and watcher.process.poll() is None:
            if any(n.startswith(STAGING_PREFIX) for n in os.listdir(serving)):
                watcher.kill()
                return "killed while the version was being copied."
            time.sleep(0.0005)
    else:
        time.sleep(seconds)
    if watcher.process.poll() is not None:
        return f"the component finished before the kill (exit {watcher.finish()})."
    watcher.kill()
    return f"killed {seconds:.1f} s into the component."


def _history_note(history: subprocess.CompletedProcess) -> str:
    lines = [line for line in history.stdout.splitlines() if "interrupted" in line]
    return f" history: {lines[-1].strip()}." if lines else " history: no line for it."


def build_base(world: World) -> None:
    """Spans 0 and 1 and a run that pushed, in the world's folder."""
    from data import synthetic

    os.makedirs(world.root)
    synthetic.generate(world.data, USERS, ITEMS, RATINGS, seed=5)
    with open(world.config, "w") as handle:
        handle.write(CONFIG)
    world.ingest_next(seed=1)
    first = world.recsys("run")
    if first.returncode != 0 or not _versions(world):
        raise RuntimeError(f"the base run failed:\n{first.stdout[-2000:]}{first.stderr[-2000:]}")


def fresh_world(pristine: str, root: str) -> World:
    """The base again, at the path it was built at: ML Metadata's artifact URIs are absolute,
    so each scenario runs where the base ran, on its own copy."""
    if os.path.ismount(root):
        for name in os.listdir(root):
            path = os.path.join(root, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        shutil.copytree(pristine, root, dirs_exist_ok=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(pristine, root)
    return World(root)


def _start_ingest(world: World, batch: str) -> subprocess.Popen:
    world.commands += 1
    return subprocess.Popen([RECSYS, "ingest", batch, *world.args()], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _when_locked(world: World, process: subprocess.Popen) -> float:
    """Waits until the ingest holds the data folder (past its imports); returns the time."""
    from pipeline.lock import INGEST_LOCK_FILE

    lock = os.path.join(world.data, INGEST_LOCK_FILE)
    while not os.path.exists(lock) and process.poll() is None:
        time.sleep(0.001)
    return time.monotonic()


def kill_ingest(trials: int = 5, size: int = 200_000) -> Callable[[World], Outcome]:
    """SIGKILL `recsys ingest` of a large batch at random moments after it took the data
    folder (while it validates and writes); then the same batch again, twice."""

    def scenario(world: World) -> Outcome:
        outcome = Outcome(f"SIGKILL during recsys ingest ({trials} moments)")
        batch = _batch(spans_latest(world), os.path.join(world.root, "big.csv"), 5 * 10**7, 3,
                       size)
        timing = _start_ingest(world, batch)  # how long one works, on a span thrown away
        locked = _when_locked(world, timing)
        timing.wait()
        works = time.monotonic() - locked
        shutil.rmtree(os.path.join(world.data, world.spans()[-1]))
        pick, landed = random.Random(7), 0
        for _ in range(trials):
            spans_before = world.spans()
            process = _start_ingest(world, batch)
            _when_locked(world, process)
            time.sleep(pick.uniform(0.0, 1.0) * works)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                landed += 1
            process.wait()
            new = [s for s in world.spans() if s not in spans_before]
            if new and world.ratings_in(new[0]) != size:
                outcome.data_lost += size - world.ratings_in(new[0])
                outcome.note += f" half span {new[0]};"
            if new:  # the ingest finished before the kill: start the next trial without it
                shutil.rmtree(os.path.join(world.data, new[0]))
        spans_before = world.spans()
        again = world.recsys("ingest", batch)
        twice = world.recsys("ingest", batch)
        new = [s for s in world.spans() if s not in spans_before]
        outcome.data_lost += size if len(new) != 1 else size - world.ratings_in(new[0])
        outcome.runs = world.commands
        outcome.survived = (again.returncode == 0 and twice.returncode == 2
                            and len(new) == 1 and not outcome.data_lost)
        outcome.note += (f" {landed} of {trials} kills landed while it worked (it works "
                         f"{works:.1f} s after taking the folder); the batch then ingested "
                         "once, a second time refused.")
        return outcome

    return scenario


def spans_latest(world: World) -> str:
    from data import spans

    return spans.latest_folder(world.data)


def _shards(world: World, split: str = "Split-train") -> List[str]:
    """The newest ExampleGen artifact's shards of one split."""
    root = os.path.join(world.output, "pipeline", "FileBasedExampleGen", "examples")
    newest = max(os.listdir(root), key=int)
    folder = os.path.join(root, newest, split)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def _truncate(path: str, keep: float = 0.5) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(int(os.path.getsize(path) * keep))


def _one_line_error(result: subprocess.CompletedProcess) -> bool:
    lines = result.stderr.strip().splitlines()
    return (result.returncode != 0 and len(lines) >= 1 and lines[-1].startswith("error:")
            and "Traceback" not in result.stderr)


def damaged_examples(world: World) -> Outcome:
    outcome = Outcome("truncated TFRecord shard of a span's examples")
    shard = _shards(world)[0]
    _truncate(shard)
    world.ingest_next(seed=11)
    digests, before = world.span_digests(), _versions(world)[-1]
    first = world.recsys("run")
    outcome.note = f"exit {first.returncode}: {first.stderr.strip()[:400]}"
    problems = served_check(world, before)
    outcome.wrong_model_served += bool(problems)
    if first.returncode == 0:
        said = [line for line in first.stdout.splitlines() if "are damaged" in line]
        outcome.note = f"exit 0; the run said: {said[0][:300] if said else 'nothing'}"
        outcome.runs = world.commands
        outcome.data_lost += lost_ratings(world, digests)
        outcome.survived = not problems
        return outcome
    outcome.survived = _one_line_error(first) and shard in first.stderr
    if outcome.survived:
        _recover(world, outcome, digests, before)
    return outcome


def damaged_serving_version(damage: str) -> Callable[[World], Outcome]:
    def scenario(world: World) -> Outcome:
        outcome = Outcome(f"newest serving/ version: {damage}")
        world.ingest_next(seed=10)
        world.recsys("run")  # a second version, for the rollback
        serving = os.path.join(world.output, "serving")
        newest = os.path.join(serving, _versions(world)[-1])
        if damage == "saved_model.pb missing":
            os.remove(os.path.join(newest, "saved_model.pb"))
        else:
            variables = os.path.join(newest, "variables")
            _truncate(os.path.join(variables, next(n for n in os.listdir(variables)
                                                   if n.startswith("variables.data"))))
        asked = world.recsys("recommend", "--user", "1")
        clear = _one_line_error(asked) and newest in asked.stderr and asked.returncode == 4
        back = world.recsys("rollback")
        digests, before = world.span_digests(), _versions(world)[-1]
        world.ingest_next(seed=11)
        digests = world.span_digests()
        outcome.note = (f"recommend: exit {asked.returncode}, {asked.stderr.strip()[:250]}; "
                        f"rollback: exit {back.returncode}.")
        rerun = world.recsys("run")
        outcome.runs = world.commands
        highest = _versions(world)[-1]
        problems = [p for p in served_check(world, before) if os.path.basename(newest) not in p]
        outcome.wrong_model_served += bool(problems)
        outcome.data_lost += lost_ratings(world, digests)
        outcome.survived = (clear and back.returncode == 0 and rerun.returncode == 0
                            and highest != before and not problems)
        return outcome

    return scenario


def damaged_metadata(world: World) -> Outcome:
    outcome = Outcome("damaged ML Metadata database")
    store = os.path.join(world.output, "metadata.sqlite")
    with open(store, "r+b") as handle:
        handle.write(b"\x00garbage" * 64)
    world.ingest_next(seed=11)
    digests, before = world.span_digests(), _versions(world)[-1]
    failed, history = world.recsys("run"), world.recsys("history")
    outcome.note = (f"run: exit {failed.returncode}, {failed.stderr.strip()[:300]}; "
                    f"history: exit {history.returncode}.")
    clear = _one_line_error(failed) and store in failed.stderr and _one_line_error(history)
    if clear:  # what the message says to do: move it aside
        os.rename(store, store + ".damaged")
        _recover(world, outcome, digests, before)
    outcome.survived = clear and outcome.survived
    return outcome


def half_written_lock(world: World) -> Outcome:
    from pipeline.lock import LOCK_FILE

    outcome = Outcome("half-written lock file")
    with open(os.path.join(world.output, LOCK_FILE), "w") as handle:
        handle.write('{"host": "a", "pi')
    world.ingest_next(seed=11)
    digests, before = world.span_digests(), _versions(world)[-1]
    _recover(world, outcome, digests, before)
    return outcome


def _fill(folder: str, leave: int = 0) -> str:
    """Fills the filesystem holding `folder` until `leave` bytes are free; returns the filler
    file to delete."""
    filler = os.path.join(folder, "filler")
    with open(filler, "wb") as handle:
        try:
            while True:
                info = os.statvfs(folder)
                free = info.f_bavail * info.f_frsize - leave
                if free <= 0:
                    break
                handle.write(b"\0" * min(free, 2**20))
                handle.flush()
        except OSError:
            pass
    return filler


def _folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)


def disk_full_during(component: str, when: str = "", leave_model_share: float = 0.0
                     ) -> Callable[[World], Outcome]:
    """The output folder's filesystem (a tmpfs of its own) fills up as `when` (default: the
    component) starts, leaving that share of a pushed model's size free."""

    def scenario(world: World) -> Outcome:
        outcome = Outcome(f"disk full during {component}" + (
            f" (filled as {when} started, half a model's size left)" if when else ""))
        world.ingest_next(seed=11)
        digests, before = world.span_digests(), _versions(world)[-1]
        leave = int(leave_model_share * _folder_bytes(
            os.path.join(world.output, "serving", before)))
        watcher = RunWatcher(_start_run(world))
        filler = None
        if watcher.started(when or component):
            filler = _fill(world.root, leave)
        code = watcher.finish()
        printed = watcher.output().strip().splitlines()
        outcome.note = f"exit {code}: {printed[-1][:300] if printed else ''}"
        clear = code == 8 and printed and printed[-1].startswith("error:") and (
            "Traceback" not in watcher.output())
        problems = served_check(world, before)
        outcome.wrong_model_served += bool(problems)
        if filler:
            os.remove(filler)
        _recover(world, outcome, digests, before)
        outcome.survived = bool(clear and filler and outcome.survived)
        return outcome

    return scenario


def disk_full_ingest(world: World) -> Outcome:
    outcome = Outcome("disk full during recsys ingest")
    spans_before = world.spans()
    batch = world.batch_file(seed=11)
    filler = _fill(world.root)
    full = world.recsys("ingest", batch)
    left = [n for n in os.listdir(world.data) if n.startswith(".incoming-")]
    os.remove(filler)
    clean = (_one_line_error(full) and full.returncode == 8 and world.spans() == spans_before
             and not left)
    again = world.recsys("ingest", batch)
    outcome.runs = world.commands
    outcome.survived = clean and again.returncode == 0 and len(world.spans()) == len(
        spans_before) + 1
    outcome.note = f"exit {full.returncode}: {full.stderr.strip()[:300]}"
    return outcome


def refused_during_run(fault: str, component: str, *command: str) -> Callable[[World], Outcome]:
    """`command` while a run on the same output folder is in `component`: refused (exit 5),
    and the run completes and pushes."""

    def scenario(world: World) -> Outcome:
        outcome = Outcome(fault)
        world.ingest_next(seed=11)
        digests, before = world.span_digests(), _versions(world)[-1]
        watcher = RunWatcher(_start_run(world))
        watcher.started(component)
        other = world.recsys(*command)
        during = watcher.process.poll() is None
        first = watcher.finish()
        outcome.note = (f"{command[0]}: exit {other.returncode}, "
                        f"{other.stderr.strip()[:200]}"
                        f"{' (while the run went on)' if during else ' (after the run ended)'}")
        problems = served_check(world, before)
        outcome.runs = world.commands
        outcome.wrong_model_served += bool(problems)
        outcome.data_lost += lost_ratings(world, digests)
        outcome.survived = (during and first == 0 and other.returncode == 5 and not problems
                            and _versions(world)[-1] != before)
        return outcome

    return scenario


def ingest_during_run(world: World) -> Outcome:
    outcome = Outcome("recsys ingest while a run reads the spans")
    world.ingest_next(seed=11)
    before = _versions(world)[-1]
    watcher = RunWatcher(_start_run(world))
    watcher.started("Transform")
    ingested = world.ingest_next(seed=12)
    first = watcher.finish()
    digests = world.span_digests()
    outcome.note = f"ingest exit {ingested.returncode}, run exit {first};"
    _recover(world, outcome, digests, before)
    outcome.survived = outcome.survived and ingested.returncode == 0 and first == 0
    return outcome


def run_during_dag_run(world: World) -> Outcome:
    """A DAG run holds its lease (tests/end_to_end/test_airflow.py runs the DAG itself)."""
    from pipeline.lock import give_back_lease, output_lock, take_lease

    outcome = Outcome("recsys run while an Airflow DAG run holds the folder")
    world.ingest_next(seed=11)
    digests, before = world.span_digests(), _versions(world)[-1]
    with output_lock(world.output):
        take_lease(world.output, "scheduled__2026-12-07")
    refused = world.recsys("run")
    give_back_lease(world.output)
    outcome.note = f"run: exit {refused.returncode}, {refused.stderr.strip()[:200]}"
    _recover(world, outcome, digests, before)
    outcome.survived = outcome.survived and refused.returncode == 5
    return outcome


def two_ingests(world: World, size: int = 1_000_000) -> Outcome:
    outcome = Outcome("two recsys ingest into one data folder")
    big = _batch(spans_latest(world), os.path.join(world.root, "big.csv"), 5 * 10**7, 3, size)
    small = _batch(spans_latest(world), os.path.join(world.root, "small.csv"), 6 * 10**7, 4)
    spans_before = world.spans()
    first = _start_ingest(world, big)
    _when_locked(world, first)
    second = world.recsys("ingest", small)
    during = first.poll() is None
    first.wait()
    retried = world.recsys("ingest", small) if second.returncode == 5 else second
    new = [s for s in world.spans() if s not in spans_before]
    outcome.runs = world.commands
    counts = sorted(world.ratings_in(s) for s in new)
    outcome.data_lost = max(0, size + BATCH - sum(counts))
    outcome.survived = (during and first.returncode == 0 and second.returncode == 5
                        and retried.returncode == 0 and counts == sorted([size, BATCH]))
    outcome.note = (f"second: exit {second.returncode}, {second.stderr.strip()[:200]}"
                    f"{' (while the first worked)' if during else ' (after the first ended)'}")
    return outcome


def _mount_small_disk(root: str) -> bool:
    """A tmpfs of its own at the world's folder, to fill up (root only)."""
    if os.geteuid() != 0:
        return False
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", root],
                   check=True)
    return True


def _run_scenario(scenario, pristine: str, root: str) -> Outcome:
    world = fresh_world(pristine, root)
    try:
        return scenario(world)
    except Exception as error:  # noqa: BLE001 - a scenario that breaks is a row too
        return Outcome(getattr(scenario, "__qualname__", "?"),
                       note=f"the scenario broke: {type(error).__name__}: {error}")


def _table(outcomes: List[Outcome]) -> str:
    info = machine()
    rows = [f"| {o.fault} | {o.runs} | {'yes' if o.survived else 'NO'} | {o.data_lost} | "
            f"{o.wrong_model_served} | {o.note.strip()} |" for o in outcomes]
    return "\n".join([
        f"Fault injection ({info['cpu']}, {info['cores']} cores, Python {info['python']}); "
        "`python -m bench.faults`",
        "",
        "| fault | commands | survived | ratings lost | wrong model served | what happened |",
        "|---|---:|---|---:|---:|---|",
        *rows, ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="kill,damage,disk,concurrency",
                        help="comma-separated scenario groups")
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="faults-")
    root, pristine = os.path.join(work, "world"), os.path.join(work, "pristine")
    build_base(World(root))
    shutil.copytree(root, pristine)
    reference = fresh_world(pristine, root)
    reference.ingest_next(seed=11)
    seconds = _component_seconds(reference.recsys("run").stdout)
    groups = {"kill": [kill_during(c, lambda c=c: seconds.get(c, 1.0) / 2)
                       for c in KILLED_COMPONENTS] + [kill_ingest()],
              "damage": [damaged_examples, damaged_serving_version("saved_model.pb missing"),
                         damaged_serving_version("variables truncated"), damaged_metadata,
                         half_written_lock],
              "disk": [disk_full_during("FileBasedExampleGen"), disk_full_during("Trainer"),
                       disk_full_during("Pusher", "ReleaseGate", 0.5), disk_full_ingest],
              "concurrency": [
                  refused_during_run("two recsys run on one output folder",
                                     "FileBasedExampleGen", "run"),
                  ingest_during_run,
                  # (rollback's imports take seconds: started as the Evaluator does, it
                  # asks for the lock while the run evaluates, gates or pushes)
                  refused_during_run("recsys rollback while a run evaluates and pushes",
                                     "Evaluator", "rollback"),
                  run_during_dag_run, two_ingests]}
    outcomes = []
    for group in args.only.split(","):
        mounted = group == "disk" and _mount_small_disk(root)
        if group == "disk" and not mounted:
            outcomes.append(Outcome("disk full", note="skipped: mounting a tmpfs needs root"))
            continue
        try:
            for scenario in groups[group]:
                outcomes.append(_run_scenario(scenario, pristine, root))
                print(outcomes[-1], flush=True)
        finally:
            if mounted:
                subprocess.run(["umount", root], check=True)
    report = {"machine": machine(), "reference_seconds": seconds,
              "outcomes": [dataclasses.asdict(o) for o in outcomes]}
    write_report("faults", report, _table(outcomes))
    return 0 if all(o.survived and not o.data_lost and not o.wrong_model_served
                    for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
