"""The cold-start protocols' scoring and anchors (bench/cold_scoring.py), and make
bench-quality's rows for them through `recsys run` on synthetic data."""

import json
import os

import numpy as np
import pytest

from bench import cold_scoring
from data import raw_format as R


def test_auc_counts_the_pairs_ordered_relevant_first():
    assert cold_scoring.auc(["a", "b", "c", "d"], {"a"}) == 1.0
    assert cold_scoring.auc(["b", "a", "c", "d"], {"a"}) == pytest.approx(2 / 3)
    assert cold_scoring.auc(["b", "a", "d", "c"], {"a", "c"}) == pytest.approx(1 / 4)
    assert np.isnan(cold_scoring.auc(["a"], {"a"}))


def _folder(root, split, ratings):
    folder = root / split
    folder.mkdir(parents=True)
    R.write_csv(str(folder / R.RATINGS_FILE), R.RATINGS_COLUMNS, ratings)
    R.write_csv(str(folder / R.ITEMS_FILE), R.ITEMS_COLUMNS, [
        ["1", "A", 1990, "Drama"], ["2", "B", 1991, "Drama"], ["3", "C", 1992, "Comedy"],
        ["4", "D", 1993, "Drama"], ["5", "E", 1994, "Comedy"]])
    R.write_csv(str(folder / R.USERS_FILE), R.USERS_COLUMNS,
                [[u, 30, "F", "writer", "10001"] for u in "xyz"])


def test_genre_popularity_ranks_new_movies_by_their_genres_popularity(tmp_path):
    _folder(tmp_path, "train", [["x", "1", 5, 1], ["y", "1", 4, 2], ["z", "2", 3, 3],
                                ["x", "3", 4, 4]])
    _folder(tmp_path, "eval", [["x", "4", 5, 9], ["y", "5", 4, 9]])
    metrics = cold_scoring.genre_popularity(str(tmp_path))
    # Drama items average 1.5 ratings, Comedy 1: item 4 (Drama) ranks above 5 (Comedy).
    assert metrics["auc"] == pytest.approx(0.5) and metrics["test_users"] == 2
    assert metrics["recall@10"] == 1.0


def test_few_answers_are_each_users_first_ratings_by_time(tmp_path, monkeypatch):
    _folder(tmp_path, "train", [["x", "1", 5, 1]])
    rows = [["y", str(item), 4, 10 - item] for item in range(1, 6)] + [["z", "1", 2, 1]]
    _folder(tmp_path, "eval", rows)
    monkeypatch.setattr(cold_scoring, "FIRST_ANSWERS", 3)
    answers, relevant = cold_scoring.few_answers_setup(str(tmp_path))
    assert answers["y"] == {"5": 4.0, "4": 4.0, "3": 4.0} and relevant == {"y": ["2", "1"]}
    assert "z" not in relevant  # nothing left to rank after the answers


CONFIG = """
training:
  epochs: 2
  autoencoder_epochs: 5
"""


def test_the_quality_bench_scores_new_movies_and_new_users_with_their_anchors(
        synthetic_folder, tmp_path, monkeypatch):
    from bench import common, quality_bench

    monkeypatch.setattr(common, "RESULTS_DIR", str(tmp_path / "results"))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    assert quality_bench.main(["--data", synthetic_folder, "--models", "hybrid",
                               "--protocols", "cold_items,few_answers", "--config", str(config),
                               "--work", str(tmp_path / "work")]) == 0
    with open(os.path.join(tmp_path, "results", "quality.json")) as handle:
        report = json.load(handle)
    cold = report["results"]["cold_items"]["hybrid"]
    assert 0.5 < cold["auc"] < 1 and 0 < cold["ndcg@10"] < 1
    assert 0 <= cold["cold_share_of_top_10"] < 0.5
    answers = report["results"]["few_answers"]
    assert 0 < answers["hybrid"]["ndcg@10"] < 1
    assert 0 < answers["hybrid, demographics only"]["ndcg@10"] < 1
    anchors = report["cold_anchors"]
    for name, protocol in (("genre popularity", "cold_items"),
                           ("LightFM (WARP, id + genres + decade)", "cold_items"),
                           ("EASE folded in, λ tuned", "few_answers")):
        assert 0 < anchors[name][protocol]["ndcg@10"] < 1, name
    table = (tmp_path / "results" / "quality.md").read_text()
    assert "| hybrid |" in table and "| LightFM (WARP, id + genres + decade) |" in table
