"""pipeline/on_dask/runner.py on a local Dask cluster of two worker processes: each Beam
primitive the components need gives what the DirectRunner gives, and what it does not
translate is refused by name."""

import json
import os
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import userstate

from pipeline.config import DASK_RUNNER
from pipeline.on_dask.runner import UnsupportedOnDaskError


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def unpinned_scheduler(tmp_path_factory):
    """A scheduler whose two workers run without a nanny, each with its own PYTHONHASHSEED:
    their hash() of a str differs (a nanny pins one seed for its workers)."""
    folder = tmp_path_factory.mktemp("unpinned")
    scheduler_file = str(folder / "scheduler.json")
    command = [sys.executable, "-m"]
    processes = [subprocess.Popen(command + ["distributed.cli.dask_scheduler",
                                  "--scheduler-file", scheduler_file, "--port", "0",
                                  "--no-dashboard", "--host", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(600):
            if os.path.exists(scheduler_file) and os.path.getsize(scheduler_file):
                break
            time.sleep(0.1)
        for seed in ("1", "2"):
            processes.append(subprocess.Popen(
                command + ["distributed.cli.dask_worker", "--scheduler-file",
                               scheduler_file, "--no-nanny", "--nthreads", "1",
                               "--no-dashboard"],
                env={**os.environ, "PYTHONHASHSEED": seed},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(scheduler_file) as handle:
            address = json.load(handle)["address"]
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _run(build, scheduler, tmp_path, runner=DASK_RUNNER):
    """What build(pipeline) outputs, as the sorted reprs of its elements."""
    sink = tmp_path / f"sink-{runner.rsplit('.', 1)[-1]}"

    def write(element):
        with open(sink, "a") as handle:  # one process at a time: each worker has one thread
            handle.write(repr(element) + "\n")

    options = PipelineOptions([f"--runner={runner}", f"--dask_client_address={scheduler}"])
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline) | "Sink" >> beam.Map(write)
    return sorted(sink.read_text().splitlines()) if sink.exists() else []


class _AddsFromSetup(beam.DoFn):
    def setup(self):
        self.offset = 100

    def process(self, element):
        yield element + self.offset


class _SumsEachBundle(beam.DoFn):
    def start_bundle(self):
        self.total = 0

    def process(self, element):
        self.total += element

    def finish_bundle(self):
        yield beam.utils.windowed_value.WindowedValue(
            self.total, 0, [beam.transforms.window.GlobalWindow()])


def _side_inputs(pipeline):
    table = pipeline | "Table" >> beam.Create([("a", 1), ("b", 2)])
    offset = pipeline | "Offset" >> beam.Create([10])
    return (pipeline | "Keys" >> beam.Create(["a", "b"])
            | beam.Map(lambda key, table, offset, every: (key, table[key] + offset, len(every)),
                       table=beam.pvalue.AsDict(table), offset=beam.pvalue.AsSingleton(offset),
                       every=beam.pvalue.AsList(table)))


def _odd_ones(pipeline):
    return (pipeline | beam.Create(range(6))
            | beam.ParDo(lambda x: [beam.pvalue.TaggedOutput("odd", x)] if x % 2 else [x])
            .with_outputs("odd", main="even")).odd


CASES = {
    "map": lambda p: p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2),
    "setup": lambda p: p | beam.Create([1, 2]) | beam.ParDo(_AddsFromSetup()),
    "bundles": lambda p: p | beam.Create([1, 2, 3]) | beam.ParDo(_SumsEachBundle())
    | beam.CombineGlobally(sum),
    # str keys across many partitions: Python's hash of a str differs between processes.
    "group_by_key": lambda p: p | beam.Create([(f"user-{i % 7}", i) for i in range(200)])
    | beam.GroupByKey() | beam.MapTuple(lambda key, values: (key, sorted(values))),
    "combine_per_key": lambda p: p | beam.Create([(f"k{i % 3}", i) for i in range(50)])
    | beam.CombinePerKey(sum),
    "combine_globally": lambda p: p | beam.Create(range(10)) | beam.CombineGlobally(sum),
    "side_inputs": _side_inputs,
    "tagged_outputs": _odd_ones,
    "partition": lambda p: (p | beam.Create(range(6)) | beam.Partition(lambda x, n: x % 3, 3))[1],
    "flatten": lambda p: (p | "A" >> beam.Create([1]), p | "B" >> beam.Create([2]))
    | beam.Flatten(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_primitive_gives_what_the_direct_runner_gives(case, scheduler, tmp_path):
    on_dask = _run(CASES[case], scheduler, tmp_path)
    assert on_dask, "nothing came out"
    assert on_dask == _run(CASES[case], scheduler, tmp_path, runner="DirectRunner")


def test_groups_by_key_alike_on_workers_that_hash_strings_differently(
        unpinned_scheduler, tmp_path):
    grouped = _run(CASES["group_by_key"], unpinned_scheduler, tmp_path)
    assert grouped == _run(CASES["group_by_key"], unpinned_scheduler, tmp_path,
                           runner="DirectRunner")
    assert len(grouped) == 7


def test_files_written_and_read_back(scheduler, tmp_path):
    prefix = str(tmp_path / "records")
    options = PipelineOptions([f"--runner={DASK_RUNNER}", f"--dask_client_address={scheduler}"])
    with beam.Pipeline(options=options) as pipeline:
        (pipeline | beam.Create([b"%d" % i for i in range(100)])
         | beam.io.WriteToTFRecord(prefix, num_shards=3))
    assert len([name for name in os.listdir(tmp_path) if name.startswith("records")]) == 3
    read = _run(lambda p: p | beam.io.ReadFromTFRecord(prefix + "*"), scheduler, tmp_path)
    assert read == sorted(repr(b"%d" % i) for i in range(100))


def test_a_failing_dofn_fails_the_pipeline(scheduler, tmp_path):
    def fails(element):
        raise RuntimeError(f"bad element {element}")

    with pytest.raises(RuntimeError, match="bad element"):
        _run(lambda p: p | beam.Create([1]) | beam.Map(fails), scheduler, tmp_path)


class _Stateful(beam.DoFn):
    COUNT = userstate.CombiningValueStateSpec("count", sum)

    def process(self, element, count=beam.DoFn.StateParam(COUNT)):  # noqa: B008 - Beam API
        yield element


@pytest.mark.parametrize("build, named", [
    (lambda p: p | beam.Create([(1, 1)]) | "Counts" >> beam.ParDo(_Stateful()), "Counts"),
    (lambda p: p | beam.Create([1]) | "Windows" >> beam.WindowInto(
        beam.transforms.window.FixedWindows(60)), "Windows"),
    (lambda p: p | beam.Create([1]) | "Stamps" >> beam.Map(
        lambda x, t=beam.DoFn.TimestampParam: x), "Stamps"),
])
def test_what_it_does_not_translate_is_refused_by_name(build, named, scheduler, tmp_path):
    with pytest.raises(UnsupportedOnDaskError, match=named):
        _run(build, scheduler, tmp_path)


def test_a_scheduler_is_required(tmp_path):
    with pytest.raises(ValueError, match="DASK_SCHEDULER_ADDRESS"):
        with beam.Pipeline(options=PipelineOptions([f"--runner={DASK_RUNNER}"])) as pipeline:
            pipeline | beam.Create([1])
