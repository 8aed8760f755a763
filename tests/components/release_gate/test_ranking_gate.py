"""The ranking half of the release gate: thresholds and the messages that say by how much."""

from components.release_gate.component import ranking_failures

CANDIDATE = {"ndcg@10": 0.30}


def test_a_candidate_above_both_thresholds_passes():
    assert ranking_failures(CANDIDATE, {"ndcg@10": 0.305}, "ndcg@10", 0.2, 0.01) == []


def test_first_run_without_baseline_checks_the_absolute_threshold_only():
    assert ranking_failures(CANDIDATE, None, "ndcg@10", 0.2, 0.0) == []
    [failure] = ranking_failures(CANDIDATE, None, "ndcg@10", 0.35, 0.0)
    assert failure == "ndcg@10 0.3000 is below the absolute threshold 0.3500 by 0.0500"


def test_a_regression_past_the_tolerance_is_refused_with_its_size():
    [failure] = ranking_failures(CANDIDATE, {"ndcg@10": 0.33}, "ndcg@10", 0.0, 0.01)
    assert failure == ("ndcg@10 0.3000 regresses past the blessed model's 0.3300 - 0.01 "
                       "by 0.0200")


def test_both_failures_are_reported():
    assert len(ranking_failures(CANDIDATE, {"ndcg@10": 0.5}, "ndcg@10", 0.4, 0.0)) == 2
