"""The item-item latency benchmark times both served paths, for one user and for a batch."""

from bench.item_item_latency import USERS, measure


def test_both_paths_are_timed_for_one_user_and_a_batch():
    figures = measure(items=30, rated=4, k=5)
    assert sorted(figures) == sorted(["whole rows 1", f"whole rows {USERS}", "k=5 1",
                                      f"k=5 {USERS}"])
    assert all(ms > 0 for ms in figures.values())
