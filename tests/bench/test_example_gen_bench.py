"""The ExampleGen benchmark runs the project's executor as the pipeline configures it and
reports its time, its peak memory and the examples it wrote."""

import glob

from bench.example_gen_bench import one_run
from data import synthetic


def test_a_run_reports_time_memory_and_every_example_written(tmp_path):
    folder = synthetic.generate(str(tmp_path / "data"), 20, 30, 300, seed=1)
    report = one_run(folder, "in_memory")
    assert report["error"] is None
    assert report["examples"] == 300
    assert report["seconds"] > 0 and report["peak_mb"] > 0
    assert not glob.glob("/tmp/example-gen-bench-*")  # its output folder is removed
