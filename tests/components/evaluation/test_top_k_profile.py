"""The release gate's profile of a model's top-k lists: ranking by slice, catalog coverage,
popularity bias and example users."""

import pytest

from components.evaluation.ranking_eval import HeldOut, ranking_by_slice, ranking_of
from components.evaluation.top_k_profile import (
    UNKNOWN_USER,
    example_lists,
    popular_items,
    top_k_profile,
)

HELD = HeldOut(
    relevant={"1": ["a", "b"], "2": ["c"], "3": ["a"], "10": ["d"]},
    slices={"1": {"gender": "F", "user_activity": "150+"},
            "2": {"gender": "M", "user_activity": "150+"},
            "3": {"gender": "F", "user_activity": "20-49"},
            "10": {"gender": "M", "user_activity": "20-49"}})
LISTS = {"1": [("a", 0.9), ("c", 0.5)], "2": [("a", 0.8), ("c", 0.4)],
         "3": [("b", 0.7), ("a", 0.6)], "10": [("a", 0.9), ("b", 0.1)]}


def test_each_slice_scores_its_own_users_as_the_whole_metric_would():
    by_slice = ranking_by_slice(LISTS, HELD, k=2)
    assert sorted(by_slice) == ["gender=F", "gender=M", "user_activity=150+",
                                "user_activity=20-49"]
    for name, users in (("gender=F", ["1", "3"]), ("user_activity=20-49", ["3", "10"])):
        expected = ranking_of([LISTS[u] for u in users], [HELD.relevant[u] for u in users], 2)
        assert by_slice[name] == {**expected, "users": 2}
    assert by_slice["gender=M"]["recall@2"] == pytest.approx(0.5)  # user 2 hit, user 10 not


def test_coverage_and_popular_share_count_slots_and_distinct_items():
    profile = top_k_profile(LISTS, catalog_size=10, popular=["a"])
    assert profile["coverage"] == pytest.approx(3 / 10)  # a, b, c
    assert profile["popular_share"] == pytest.approx(4 / 8)  # four of eight slots are "a"
    assert profile["users"] == 4 and profile["popular_items"] == 1


def test_the_popular_items_are_an_unknown_users_list_of_a_tenth_of_the_catalog():
    asked = []

    def recommend(users, k):
        asked.append((list(users), k))
        return [[(f"item{i}", 1.0 - i / 100) for i in range(k)]]

    assert popular_items(recommend, catalog_size=95) == [f"item{i}" for i in range(10)]
    assert asked == [([UNKNOWN_USER], 10)]


def test_one_example_user_per_activity_group_with_held_out_hits_marked():
    examples = example_lists(LISTS, HELD)
    assert [(e["user_id"], e["slice"]) for e in examples] == [
        ("1", "user_activity=150+"), ("3", "user_activity=20-49")]
    assert [(i["item_id"], i["held_out"]) for i in examples[0]["items"]] == [
        ("a", True), ("c", False)]
