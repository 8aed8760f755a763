"""The quality benchmark's EASE peer: item-item ranking from a user's history."""

from bench.ease_baseline import ease_recommend


def test_ease_ranks_what_co_occurs_with_the_users_history_and_skips_what_they_rated():
    # Whoever rated a also rated b; c and d go together; u1 has only a (and c).
    train = [(f"u{n}", "a") for n in range(2, 12)] + [(f"u{n}", "b") for n in range(2, 12)]
    train += [(f"v{n}", "c") for n in range(4)] + [(f"v{n}", "d") for n in range(4)]
    train += [("u1", "a"), ("u1", "c")]
    recommend = ease_recommend(train, regularization=1.0)
    [rows] = recommend(["u1"], 2)
    assert [item for item, _ in rows] == ["b", "d"]
    assert recommend(["stranger"], 3) == [[]]  # no history: nothing to rank from
