"""ExampleGen's own count: the ratings a file holds against the examples written from it, so
examples a runner lost stop the run (the multi-processing DirectRunner lost 23.5% at 10M)."""

import os

import pytest
import tensorflow as tf
from tfx.proto.example_gen_pb2 import Input, Output, SplitConfig
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.example_gen import example_count
from components.example_gen.example_count import (
    ExamplesLostError,
    check_every_rating_written,
    count_examples,
    count_rows,
)
from components.example_gen.executor import split_uris_by_ratings_file
from data import raw_format as R
from data import synthetic


def _write(path, text: bytes) -> str:
    with open(path, "wb") as handle:
        handle.write(text)
    return str(path)


def _write_examples(split_uri, counts):
    """One gzipped TFRecord file per entry of counts, as ExampleGen writes a split."""
    os.makedirs(split_uri, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for shard, count in enumerate(counts):
        with tf.io.TFRecordWriter(os.path.join(split_uri, f"data_tfrecord-{shard:05d}.gz"),
                                  options) as writer:
            for index in range(count):
                writer.write(f"example {shard} {index}".encode())
    return str(split_uri)


@pytest.mark.parametrize("text, rows", [
    (b"user_id,item_id,rating,timestamp\n1,2,3,4\n5,6,1,8\n", 2),
    (b"user_id,item_id,rating,timestamp\n1,2,3,4\n5,6,1,8", 2),  # no newline at the end
    (b"user_id,item_id,rating,timestamp\r\n1,2,3,4\r\n5,6,1,8\r\n", 2),
    (b"user_id,item_id,rating,timestamp\n1,2,3,4\n\n  \n5,6,1,8\n\n", 2),  # blank lines
    (b"user_id,item_id,rating,timestamp\n", 0),
    (b"user_id,item_id,rating,timestamp", 0),
])
def test_rows_are_the_non_blank_lines_after_the_header(tmp_path, text, rows):
    assert count_rows(_write(tmp_path / "ratings.csv", text)) == rows


def test_rows_are_counted_the_same_across_chunk_boundaries(tmp_path, monkeypatch):
    folder = synthetic.generate(str(tmp_path / "data"), 30, 40, 400, seed=2)
    path = os.path.join(folder, R.RATINGS_FILE)
    whole = count_rows(path)
    monkeypatch.setattr(example_count, "_CHUNK_BYTES", 7)  # lines straddle every chunk
    assert count_rows(path) == whole == len(R.read_table(folder, R.RATINGS_FILE)) == 400


def test_examples_are_the_records_of_every_file_of_the_split(tmp_path):
    assert count_examples(_write_examples(tmp_path / "Split-train", [3, 0, 5])) == 8
    assert count_examples(str(tmp_path / "Split-none")) == 0


def test_a_split_short_of_the_ratings_names_the_file_the_counts_and_the_rule(tmp_path):
    ratings = _write(tmp_path / "ratings.csv", b"h\n" + b"r\n" * 10)
    uris = [_write_examples(tmp_path / "Split-train", [4, 4]),
            _write_examples(tmp_path / "Split-eval", [1])]
    with pytest.raises(ExamplesLostError) as caught:
        check_every_rating_written({ratings: uris})
    message = str(caught.value)
    assert message.startswith(f"{ratings}: 10 ratings but ExampleGen wrote 9 examples")
    assert "the Beam runner lost 1 of them" in message
    assert "rule: every rating becomes exactly one example" in message
    assert "--direct_running_mode=in_memory" in message


def test_more_examples_than_ratings_are_refused_too(tmp_path):
    ratings = _write(tmp_path / "ratings.csv", b"h\nr\n")
    uris = [_write_examples(tmp_path / "Split-train", [2])]
    with pytest.raises(ExamplesLostError, match="1 more than it read"):
        check_every_rating_written({ratings: uris})


def test_every_rating_written_passes(tmp_path):
    ratings = _write(tmp_path / "ratings.csv", b"h\n" + b"r\n" * 9)
    check_every_rating_written({ratings: [_write_examples(tmp_path / "Split-train", [6]),
                                          _write_examples(tmp_path / "Split-eval", [3])]})


def test_the_error_survives_a_beam_worker_pickling_it():
    import pickle

    error = pickle.loads(pickle.dumps(ExamplesLostError("/d/ratings.csv", 5, 3)))
    assert (error.path, error.ratings, error.examples) == ("/d/ratings.csv", 5, 3)


def _examples(*split_names):
    """The Examples artifact as TFX's ExampleGen leaves it: its uri and split names set."""
    examples = standard_artifacts.Examples()
    examples.uri = "/out/examples/1"
    examples.split_names = artifact_utils.encode_split_names(list(split_names))
    return examples


def _exec_properties(input_config, output_config):
    return {"input_base": "/data", "input_config": proto_utils.proto_to_json(input_config),
            "output_config": proto_utils.proto_to_json(output_config)}


def test_a_hash_split_counts_all_its_splits_against_the_one_ratings_file():
    examples = _examples("train", "eval")
    properties = _exec_properties(
        Input(splits=[Input.Split(name="ratings", pattern="span-3/ratings.csv")]),
        Output(split_config=SplitConfig(splits=[
            SplitConfig.Split(name="train", hash_buckets=4),
            SplitConfig.Split(name="eval", hash_buckets=1)])))
    assert split_uris_by_ratings_file(properties, examples) == {
        "/data/span-3/ratings.csv": ["/out/examples/1/Split-train", "/out/examples/1/Split-eval"]}


def test_a_folder_per_split_counts_each_split_against_its_own_ratings_file():
    examples = _examples("train", "eval")
    properties = _exec_properties(
        Input(splits=[Input.Split(name="train", pattern="train/ratings.csv"),
                      Input.Split(name="eval", pattern="eval/ratings.csv")]), Output())
    assert split_uris_by_ratings_file(properties, examples) == {
        "/data/train/ratings.csv": ["/out/examples/1/Split-train"],
        "/data/eval/ratings.csv": ["/out/examples/1/Split-eval"]}


def test_a_file_that_ends_inside_a_record_is_refused(tmp_path):
    import gzip

    split = _write_examples(tmp_path / "Split-train", [2])
    [path] = tf.io.gfile.glob(f"{split}/*.gz")
    with gzip.open(path) as handle:
        records = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(records[:-3])
    with pytest.raises(ValueError, match="ends inside a record"):
        count_examples(split)
