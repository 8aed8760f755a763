"""The replay's weekly cut: the bootstrap holds the first 60% of ratings, weeks follow in order."""

from bench.weekly_spans import WEEK_SECONDS, weekly_batches
from data.raw_format import Rating


def test_weeks_follow_the_bootstrap_in_time_order_and_lose_nothing():
    start = 880_000_000
    ratings = [Rating(str(n % 7), str(n % 11), 3.0, start + n * WEEK_SECONDS // 10)
               for n in range(200)]  # ten ratings a week for twenty weeks
    batches = weekly_batches(ratings)
    assert len(batches[0]) == 120 and [len(b) for b in batches[1:]] == [10] * 8
    assert sorted(r.timestamp for b in batches for r in b) == sorted(r.timestamp for r in ratings)
    for earlier, later in zip(batches, batches[1:]):
        assert max(r.timestamp for r in earlier) < min(r.timestamp for r in later)


def test_plot_draws_every_run_and_skips_a_week_the_drift_gate_stopped(tmp_path):
    from bench.replay import plot

    run = {"rmse": 0.95, "ndcg@10": 0.2, "seconds": 90.0, "blessed": True, "pushed": "1"}
    report = {"machine": {"cpu": "test cpu"}, "weeks": [
        {"span": 1, "warm": run, "cold": dict(run, blessed=False, pushed=None)},
        {"span": 2, "warm": {"stopped": "drift"}, "cold": dict(run, rmse=0.97)}]}
    path = plot(report, str(tmp_path / "replay.png"))
    from matplotlib import image

    pixels = image.imread(path)
    assert pixels.shape[0] == 900 and pixels.shape[1] == 800
    assert (pixels[..., :3] < 0.9).any()  # something was drawn on the white page
