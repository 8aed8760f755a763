"""make bench-quality trains through `recsys run` on a protocol's training part and scores the
pushed model: the path a user takes, on synthetic data."""

import glob
import json

import tensorflow as tf

from data import raw_format as R

CONFIG = """
training:
  epochs: 2
  autoencoder_epochs: 5
"""


def test_the_quality_bench_scores_the_model_recsys_run_pushed(synthetic_folder, tmp_path,
                                                                 monkeypatch):
    from bench import common, quality_bench

    monkeypatch.setattr(common, "RESULTS_DIR", str(tmp_path / "results"))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    work = tmp_path / "work"
    assert quality_bench.main(["--data", synthetic_folder, "--models", "hybrid",
                               "--protocols", "stratified", "--config", str(config),
                               "--work", str(work)]) == 0
    with open(tmp_path / "results" / "quality.json") as handle:
        report = json.load(handle)
    results = report["results"]["stratified"]
    assert results["hybrid"]["already_rated_in_top_k"] == 0
    assert 0 < results[quality_bench.GATE]["ndcg@10"] < 1
    assert 0 < report["baselines"]["EASE, λ tuned"]["stratified"]["ndcg@10"] < 1
    # The pushed model learned every rating of the training part, and none of the test part.
    train = R.read_table(str(work / "data" / "stratified" / "train"), R.RATINGS_FILE)
    [pushed] = glob.glob(str(work / "runs" / "stratified" / "hybrid" / "serving" / "*"))
    model = tf.saved_model.load(pushed)
    assert model.seen_items.shape[0] == len({(r.user_id, r.item_id) for r in train})
    table = (tmp_path / "results" / "quality.md").read_text()
    assert "| hybrid |" in table and "| EASE, λ tuned |" in table
