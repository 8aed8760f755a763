"""The latency benchmark's measurement on a pushed model (figures come from `make bench`)."""

import os

from bench.serving_latency import _percentile, known_users, measure
from pipeline.serving import latest_model_dir


def test_percentile_picks_the_value_below_which_that_share_lies():
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 0.5) == 51.0 and _percentile(values, 0.99) == 100.0


def test_measures_one_user_calls_and_one_batch_of_every_known_user(pipeline_run,
                                                                    synthetic_folder):
    output, code = pipeline_run
    assert code == 0
    users = known_users(synthetic_folder)
    figures = measure(latest_model_dir(os.path.join(output, "serving")), users)
    assert figures["users"] == len(users) > 100
    assert 0 < figures["one_user_p50_ms"] <= figures["one_user_p99_ms"]
    assert figures["all_users_seconds"] > 0
