"""make bench's training throughput from the Trainer's record (training.json)."""

import pytest

from bench.pipeline_bench import with_throughput


def _record(seconds, starts, blended):
    return {"examples": 1000, "epoch_seconds": seconds, "epoch_starts": starts,
            "blended_models_seconds": blended}


def test_steady_state_counts_only_epochs_the_towers_ran_alone():
    # Epochs 2 and 3 shared the cores with the autoencoder (slow); 4, 5 and 6 ran alone.
    record = with_throughput(_record([5.0, 2.0, 2.0, 1.0, 2.0, 0.5], [0, 5, 7, 9, 10, 12], 8.0))
    assert record["steady_examples_per_second"] == pytest.approx(1000)
    assert record["examples_per_second"] == pytest.approx(6000 / 12.5)


def test_steady_state_falls_back_to_every_epoch_after_the_first():
    record = with_throughput(_record([5.0, 2.0, 4.0, 3.0, 9.0], [0, 5, 7, 11, 14], 60.0))
    assert record["steady_examples_per_second"] == pytest.approx(1000 / 3.5)


def test_two_epochs_have_the_second_as_steady_state():
    record = with_throughput(_record([5.0, 2.0], [0, 5], 60.0))
    assert record["steady_examples_per_second"] == pytest.approx(500)


def test_one_epoch_has_no_steady_state():
    assert with_throughput(_record([5.0], [0], 1.0))["steady_examples_per_second"] is None
