"""The towers' step benchmark times the Trainer's own model at a shape, and can say which ops
took the time."""

from bench.towers_step import measure

TINY = (20, 30, 400)  # users, items, ratings


def test_a_step_is_timed_and_its_costliest_ops_named_costliest_first():
    report = measure(TINY, steps=3, profile=500)
    assert report["ms_per_step"] > 0
    assert report["examples_per_second"] > 0
    names = [name for name, _ in report["top_ops"]]
    assert all(":" in name and "::" not in name for name in names)
    assert any("history/SparseTensorDenseMatMul" in name for name in names)
    times = [ms for _, ms in report["top_ops"]]
    assert times == sorted(times, reverse=True)

    assert len(measure(TINY, steps=3, profile=2)["top_ops"]) == 2
