"""Parsers of the values users give in a command line or a query string (`recsys recommend
--likes 50,181:4`, `/recommend?likes=50,181:4`): one place for the rules and their messages."""

import argparse


def positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def seconds(text: str) -> float:
    """A time interval: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in [1, 65535], got {text!r}")
    return int(text)


def names(text: str) -> tuple:
    values = tuple(value.strip() for value in text.split(",") if value.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return values


def rated_items(text: str) -> dict:
    """'50,181:4' → {'50': 5.0, '181': 4.0}."""
    rated = {}
    for entry in names(text):
        item, _, rating = entry.partition(":")
        try:
            value = float(rating) if rating else 5.0
        except ValueError:
            value = 0.0
        if not 1.0 <= value <= 5.0:
            raise argparse.ArgumentTypeError(f"{entry!r}: a rating must be a number in [1, 5]")
        rated[item.strip()] = value
    return rated


def year_range(text: str) -> tuple:
    """'1990-1999', '1995-' or '-1980' → (min, max), 0 for no bound."""
    low, dash, high = text.strip().partition("-")
    if not dash or not (low or high) or not all(v.isdigit() for v in (low, high) if v):
        raise argparse.ArgumentTypeError(
            f"expected FROM-TO, FROM- or -TO years, e.g. 1990-1999, got {text!r}")
    if low and high and int(low) > int(high):
        raise argparse.ArgumentTypeError(f"the first year is after the second in {text!r}")
    return int(low or 0), int(high or 0)
