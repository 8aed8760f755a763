"""The pushed model's catalog and the questions beyond a known user's top k, through the
signatures of the shared pipeline run: movies nobody rated yet, the user's constraints, a new
user's few answers, a movie's audience, and the requests the signatures refuse."""

import collections
import json
import os

import numpy as np
import pytest

from components import features as F
from data import raw_format as R
from pipeline import cli
from pipeline.serving import Constraints, Recommender, RequestError, latest_model_dir
from tests.conftest import COLD_ITEMS

COLD_IDS = [item[0] for item in COLD_ITEMS]


@pytest.fixture(scope="module")
def recommender(run):
    return Recommender(latest_model_dir(os.path.join(run, "serving")))


@pytest.fixture(scope="module")
def items(synthetic_folder):
    return {item.item_id: item for item in R.read_table(synthetic_folder, R.ITEMS_FILE)}


@pytest.fixture(scope="module")
def users(synthetic_folder):
    return {user.user_id: user for user in R.read_table(synthetic_folder, R.USERS_FILE)}


@pytest.fixture(scope="module")
def ratings(synthetic_folder):
    return R.read_table(synthetic_folder, R.RATINGS_FILE)


@pytest.fixture(scope="module")
def rated_by(ratings):
    rated = collections.defaultdict(set)
    for rating in ratings:
        rated[rating.user_id].add(rating.item_id)
    return rated


def _ids(rows):
    return [item for item, _ in rows]


def _moved(before, after) -> float:
    """Mean displacement of the items both rankings hold, between their places in each."""
    common = set(before) & set(after)
    places = {item: n for n, item in enumerate(i for i in after if i in common)}
    return sum(abs(n - places[item]) for n, item in enumerate(i for i in before if i in common)
               ) / len(common)


def test_every_item_of_items_csv_is_served_the_unrated_ones_too(recommender, items, rated_by):
    user = sorted(rated_by)[0]
    [rows] = recommender.recommend([user], k=len(items))
    assert set(_ids(rows)) == set(items) - rated_by[user]
    assert set(COLD_IDS) <= set(_ids(rows))
    assert all(np.isfinite(score) for _, score in rows)


def test_unrated_movies_reach_the_users_whose_tastes_match_them(recommender, items, rated_by):
    """A new movie is ranked from its content: the more of a user's ratings went to its
    genres, the higher it ranks for them; the recent ones reach some users' top 20, not
    everyone's (the old Western, of an unpopular kind, may reach nobody's)."""
    users = sorted(rated_by)
    rankings = [_ids(rows) for rows in recommender.recommend(users, k=len(items))]
    for cold in COLD_IDS:
        ranks = [ranking.index(cold) for ranking in rankings]
        shares = [_genre_share([user], set(items[cold].genres), items, rated_by)
                  for user in users]
        assert np.corrcoef(ranks, shares)[0, 1] < -0.1, cold
    for cold in COLD_IDS[:2]:
        reached = sum(ranking.index(cold) < 20 for ranking in rankings)
        assert 0 < reached < len(users) / 4, cold


def test_unrated_movies_reach_strangers_no_more_than_known_users(recommender, users):
    """Users the model never saw, served from their demographics: a new movie reaches some
    of their top 20s at most, as it does known users' (a bias fitted on known users, whose
    scores add their history's item-item rows, would put it in every stranger's)."""
    strangers = sorted(users)
    rankings = [_ids(rows) for rows in recommender.recommend(
        [f"stranger-{user}" for user in strangers], k=20, user_features={
            F.AGE: [users[u].age for u in strangers],
            F.GENDER: [users[u].gender for u in strangers],
            F.OCCUPATION: [users[u].occupation for u in strangers],
            F.ZIP_CODE: [users[u].zip_code for u in strangers]})]
    for cold in COLD_IDS:
        assert sum(cold in ranking for ranking in rankings) < len(strangers) / 4, cold


def _genre_share(users, genres, items, rated_by) -> float:
    """The share of the users' ratings given to movies of one of genres."""
    rated = [item for user in users for item in rated_by[user]]
    return np.mean([bool(genres & set(items[item].genres)) for item in rated])


def test_similar_works_for_an_unrated_movie(recommender, items):
    for cold in COLD_IDS:
        [rows] = recommender.similar_items([cold], k=10)
        assert len(rows) == 10 and cold not in _ids(rows)
        genres = set(items[cold].genres)
        sharing = np.mean([bool(genres & set(items[i].genres)) for i in _ids(rows)])
        base = np.mean([bool(genres & set(item.genres)) for item in items.values()])
        assert sharing > base, cold


def test_an_item_outside_the_catalog_is_refused_by_name(recommender, run, capsys):
    with pytest.raises(RequestError, match="item_id: not in the catalog.*no-such-item"):
        recommender.similar_items(["no-such-item"], k=3)
    with pytest.raises(RequestError, match="not in the catalog.*no-such-item"):
        recommender.users_for_item(["no-such-item"], k=3)
    for command in ("similar", "audience"):
        assert cli.main([command, "--item", "no-such-item", "--output", run]) == \
            cli.EXIT_DATA_ERROR
        err = capsys.readouterr().err
        assert err.startswith("error: item_id: not in the catalog") and "no-such-item" in err
        assert err.count("\n") == 1


@pytest.mark.parametrize("k", ["0", "-5", "two", "2.5"])
def test_the_cli_refuses_a_k_that_is_not_a_positive_integer(run, rated_by, capsys, k):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["recommend", "--user", sorted(rated_by)[0], "-k", k, "--output", run])
    assert exit_.value.code == cli.EXIT_DATA_ERROR
    assert "must be a positive integer" in capsys.readouterr().err


def test_the_signatures_refuse_a_k_below_one(recommender, rated_by):
    with pytest.raises(RequestError, match="k must be a positive integer"):
        recommender.recommend([sorted(rated_by)[0]], k=0)


def test_constraints_apply_inside_the_ranking(recommender, items, rated_by):
    user = sorted(rated_by)[1]
    rated = rated_by[user]
    excluded = _ids(recommender.recommend([user], k=3)[0])
    constraints = Constraints(include_genres=("Comedy", "Drama"), exclude_genres=("Romance",),
                              min_year=1980, max_year=1995, exclude_item_ids=tuple(excluded))
    meeting = [item for item in items.values() if item.item_id not in rated
               and set(item.genres) & {"Comedy", "Drama"} and "Romance" not in item.genres
               and 1980 <= item.year <= 1995 and item.item_id not in excluded]
    assert len(meeting) > 10
    [rows] = recommender.recommend_constrained([user], constraints, k=10)
    assert len(rows) == 10 and {i for i in _ids(rows)} <= {i.item_id for i in meeting}
    # The same order as the user's unconstrained ranking, restricted.
    [everything] = recommender.recommend([user], k=len(items))
    assert _ids(rows) == [i for i in _ids(everything) if i in {m.item_id for m in meeting}][:10]
    [all_of_them] = recommender.recommend_constrained([user], constraints, k=len(items))
    assert sorted(_ids(all_of_them)) == sorted(i.item_id for i in meeting)


def test_an_impossible_constraint_gives_no_movie_and_says_why(recommender, run, rated_by,
                                                             capsys):
    user = sorted(rated_by)[0]
    assert recommender.recommend_constrained(
        [user], Constraints(min_year=2050), k=10) == [[]]
    assert cli.main(["recommend", "--user", user, "--years", "2050-", "--output", run]) == 0
    assert "No recommendation: no movie in the catalog is from 2050 or later" in \
        capsys.readouterr().out
    assert cli.main(["recommend", "--user", user, "--genres", "Documentary", "--not-genres",
                     "Documentary", "--output", run]) == 0
    assert "meets all of: has one of the genres Documentary; has none of the genres " \
           "Documentary" in capsys.readouterr().out


def test_an_unknown_genre_is_refused(recommender, rated_by):
    with pytest.raises(RequestError, match="genre not in the catalog: Cyberpunk"):
        recommender.recommend_constrained([sorted(rated_by)[0]],
                                          Constraints(include_genres=("Cyberpunk",)))


def test_a_new_user_is_served_from_a_few_answers(recommender, items, ratings):
    liked = [r.item_id for r in ratings if r.rating >= 4][:3]
    answers = {item: 5.0 for item in liked}
    rows = recommender.recommend_from_answers(answers, k=10)
    assert len(rows) == 10 and not set(_ids(rows)) & set(liked)
    nothing = recommender.recommend_from_answers({}, k=10)
    assert len(nothing) == 10
    # Answers move the ranking away from the no-answer one, the more of them the further
    # (they weigh n / (n + ANSWERS_PRIOR) against the prior).
    catalog = len(items)
    prior = _ids(recommender.recommend_from_answers({}, k=catalog))
    few = _ids(recommender.recommend_from_answers(answers, k=catalog))
    many = _ids(recommender.recommend_from_answers(
        {r.item_id: r.rating for r in ratings if r.user_id == ratings[0].user_id}, k=catalog))
    assert 0 < _moved(prior, few) < _moved(prior, many)
    # Liked genres restrict the ranking to them.
    sci_fi = recommender.recommend_from_answers(answers, genres=["Sci-Fi"], k=10)
    assert sci_fi and all("Sci-Fi" in items[i].genres for i in _ids(sci_fi))


def test_a_new_users_answers_need_one_rating_per_movie(recommender, items):
    signature = recommender.signature("recommend_from_answers")
    import tensorflow as tf

    inputs = Constraints().inputs()
    with pytest.raises(RequestError, match="same length"):
        signature(item_ids=tf.constant(["1", "2"]), ratings=tf.constant([5.0]),
                  genres=tf.constant([], tf.string), k=tf.constant(5), **inputs)


def test_the_cli_serves_a_new_user_from_likes_and_genres(run, ratings, capsys):
    liked = [r.item_id for r in ratings][:2]
    assert cli.main(["recommend", "--likes", f"{liked[0]},{liked[1]}:4", "--genres", "Comedy",
                     "-k", "5", "--json", "--output", run]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and not {r["item_id"] for r in rows} & set(liked)


def test_audience_ranks_users_as_recommend_scores_them(recommender, items, rated_by):
    item = collections.Counter(i for rated in rated_by.values() for i in rated).most_common(1)[0][0]
    [audience] = recommender.users_for_item([item], k=20)
    assert len(audience) == 20
    assert not {user for user, _ in audience} & {u for u, r in rated_by.items() if item in r}
    scores = [score for _, score in audience]
    assert scores == sorted(scores, reverse=True)
    for user, score in audience[:3]:
        [rows] = recommender.recommend([user], k=len(items))
        assert dict(rows)[item] == pytest.approx(score, rel=1e-4, abs=1e-4)
    # An unrated movie has an audience too, all of its users candidates.
    [cold] = recommender.users_for_item([COLD_IDS[0]], k=5)
    assert len(cold) == 5


def test_the_cli_lists_a_movies_audience(run, rated_by, capsys):
    assert cli.main(["audience", "--item", COLD_IDS[1], "-k", "7", "--json",
                     "--output", run]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 7 and all(row["user_id"] in rated_by for row in rows)
