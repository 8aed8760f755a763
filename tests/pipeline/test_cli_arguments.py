"""The checks of what users type (the CLI's and the server's, pipeline/arguments.py), before
any model is loaded."""

import argparse

import pytest

from data import raw_format as R
from pipeline import arguments, cli
from pipeline.serving import Constraints


@pytest.mark.parametrize("text, years", [("1990-1999", (1990, 1999)), ("1995-", (1995, 0)),
                                         ("-1980", (0, 1980))])
def test_year_ranges(text, years):
    assert arguments.year_range(text) == years


@pytest.mark.parametrize("text", ["1990", "-", "a-b", "1990-19x"])
def test_malformed_year_ranges_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="FROM-TO"):
        arguments.year_range(text)


def test_likes_take_an_optional_rating():
    assert arguments.rated_items("50, 181:4,172") == {"50": 5.0, "181": 4.0, "172": 5.0}
    for text in ("50:9", "50:x", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            arguments.rated_items(text)


def test_the_recommend_command_needs_a_user_or_answers(tmp_path, capsys):
    assert cli.main(["recommend", "--output", str(tmp_path)]) == cli.EXIT_DATA_ERROR
    assert "--likes" in capsys.readouterr().err


def _item(item_id, year, *genres):
    return R.Item(item_id, item_id, year, genres)


CATALOG = [_item("1", 1990, "Drama"), _item("2", 2001, "Comedy"), _item("3", 0, "Western")]


def test_constraints_say_which_rule_no_movie_meets():
    assert Constraints(include_genres=("Drama",)).unmet(CATALOG) is None
    assert Constraints(min_year=2050).unmet(CATALOG) == \
        "no movie in the catalog is from 2050 or later"
    assert Constraints(include_genres=("Drama",), min_year=2000).unmet(CATALOG) == (
        "no movie in the catalog meets all of: has one of the genres Drama; "
        "is from 2000 or later")
    # An unknown year meets no year bound.
    assert Constraints(include_genres=("Western",), max_year=2100).unmet(CATALOG) == (
        "no movie in the catalog meets all of: has one of the genres Western; "
        "is from 2100 or earlier")
