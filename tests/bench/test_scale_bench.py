"""The scale benchmark's report: a runner that loses examples shows it."""

from bench.scale_bench import examples_written, markdown


def _run(train: int, evaluated: float, ratings: int) -> dict:
    return {"ratings": ratings, "users": 10, "items": 5, "total_seconds": 60.0,
            "peak_mb": {"Trainer": 1024.0}, "own_peak_mb": {"Trainer": 768.0},
            "largest_child_peak_mb": {"Trainer": 512.0}, "seconds": {"Trainer": 30.0},
            "training": {"examples": train, "steady_examples_per_second": 1000.0},
            "metrics": {"example_count": evaluated, "root_mean_squared_error": 0.9},
            "recommend_latency": {"users": 10}}


def test_examples_written_counts_both_splits():
    assert examples_written(_run(800, 200.0, 1000)) == 1000


def test_the_table_shows_examples_lost_between_the_ratings_and_the_splits():
    report = {"machine": {"cpu": "cpu", "cores": 2, "memory_gb": 1},
              "sizes": {"1m": _run(800, 200.0, 1000), "10m": _run(6000, 1500.0, 10000)}}
    assert ("| examples after ExampleGen (train + eval) / ratings | 1,000 / 1,000 | "
            "7,500 / 10,000 |") in markdown(report)


def test_the_table_shows_each_process_s_peak():
    report = {"machine": {"cpu": "cpu", "cores": 2, "memory_gb": 1},
              "sizes": {"1m direct": _run(800, 200.0, 1000)}}
    assert "| peak per process, GB: `recsys run` / its largest worker | 0.8 / 0.5 |" in \
        markdown(report)
