"""ExampleGen writes, for every rating, the serialized example of its rating, user and item
features: the same bytes as the example built feature by feature, in the split TFX's own hash
split puts those bytes in, whatever the shards the ratings file is read in."""

import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import _PartitionFn
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.proto.example_gen_pb2 import Input, Output, SplitConfig
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components import features as F
from components.example_gen import text_shards
from components.example_gen.executor import (
    Executor,
    WriteJoinedExamples,
    _user_of_line,
    activity_group,
    age_group,
)
from components.example_gen.item_catalog import read_item_catalog
from data import raw_format as R
from data import synthetic
from tests import PROJECT_DIR


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic.generate(str(tmp_path_factory.mktemp("synthetic")), 30, 40, 400, seed=3)


def _built_feature_by_feature(rating, user, item, count) -> bytes:
    def strings(*values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    def ints(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feature = {
        F.USER_ID: strings(rating.user_id), F.ITEM_ID: strings(rating.item_id),
        F.RATING: tf.train.Feature(float_list=tf.train.FloatList(value=[rating.rating])),
        F.TIMESTAMP: ints(rating.timestamp), F.AGE: ints(user.age),
        F.GENDER: strings(user.gender), F.OCCUPATION: strings(user.occupation),
        F.ZIP_CODE: strings(user.zip_code), F.TITLE: strings(item.title),
        F.GENRES: strings(*item.genres), F.AGE_GROUP: strings(age_group(user.age)),
        F.USER_ACTIVITY: strings(activity_group(count))}
    if item.year:
        feature[F.YEAR] = ints(item.year)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def _expected_examples(folder, ratings=None):
    ratings = R.read_table(folder, R.RATINGS_FILE) if ratings is None else ratings
    users = {u.user_id: u for u in R.read_table(folder, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(folder, R.ITEMS_FILE)}
    counts = {}
    for rating in ratings:
        counts[rating.user_id] = counts.get(rating.user_id, 0) + 1
    return [_built_feature_by_feature(r, users[r.user_id], items[r.item_id], counts[r.user_id])
            for r in ratings]


def _records(folder) -> list:
    files = glob.glob(os.path.join(folder, "*"))
    assert files and all(name.endswith(".gz") for name in files)  # none left INCOMPLETE
    return [record.numpy() for record in tf.data.TFRecordDataset(sorted(files), "GZIP")]


@pytest.mark.parametrize("shard_bytes", [None, 997])  # one shard; ~10 shards
def test_every_rating_becomes_the_bytes_of_its_joined_example(
        folder, tmp_path, monkeypatch, shard_bytes):
    monkeypatch.setattr(text_shards, "SHARD_BYTES", shard_bytes or text_shards.SHARD_BYTES)
    ratings_file = os.path.join(folder, R.RATINGS_FILE)
    shards = len(text_shards.shards(ratings_file))
    assert (shards == 1) == (shard_bytes is None)
    with beam.Pipeline() as pipeline:
        _ = pipeline | WriteJoinedExamples(ratings_file, [str(tmp_path)])
    assert len(os.listdir(tmp_path)) == shards
    assert sorted(_records(tmp_path)) == sorted(_expected_examples(folder))


@pytest.mark.parametrize("line, users", [
    ("196,242,3,881250949", ["196"]),
    (" 196 ,242,3,881250949\r\n", ["196"]),  # as parse_rating reads it: stripped
    ("   \n", []),
])
def test_each_ratings_line_counts_for_its_user(line, users):
    assert list(_user_of_line(line)) == users


def test_a_user_missing_from_the_users_table_is_refused_by_name(folder, tmp_path):
    for name in (R.USERS_FILE, R.ITEMS_FILE, R.RATINGS_FILE):
        with open(os.path.join(folder, name)) as source, open(tmp_path / name, "w") as copy:
            copy.write(source.read())
    with open(tmp_path / R.RATINGS_FILE, "a") as ratings:
        ratings.write("no-such-user,1,4,5\n")
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(Exception, match="user 'no-such-user' is not in users.csv"):
        with beam.Pipeline() as pipeline:
            _ = pipeline | WriteJoinedExamples(str(tmp_path / R.RATINGS_FILE), [str(output)])
    assert os.listdir(output) == []  # nothing half-written


def test_the_executor_writes_every_example_once_in_the_split_tfx_would_put_it(
        folder, tmp_path, monkeypatch):
    monkeypatch.setattr(text_shards, "SHARD_BYTES", 1499)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path)
    splits = [SplitConfig.Split(name="train", hash_buckets=4),
              SplitConfig.Split(name="eval", hash_buckets=1)]
    properties = {
        "input_base": folder,
        "input_config": proto_utils.proto_to_json(
            Input(splits=[Input.Split(name="all", pattern=R.RATINGS_FILE)])),
        "output_config": proto_utils.proto_to_json(
            Output(split_config=SplitConfig(splits=splits))),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP}
    # The project's setup.py as the workers' package, as the pipeline passes it: without one
    # TFX packages its own install into a temporary folder it never deletes.
    setup_file = os.path.join(PROJECT_DIR, "setup.py")
    context = BaseBeamExecutor.Context(beam_pipeline_args=[f"--setup_file={setup_file}"])
    Executor(context).Do({}, {"examples": [examples]}, properties)

    written = {name: _records(artifact_utils.get_split_uri([examples], name))
               for name in ("train", "eval")}
    assert sorted(written["train"] + written["eval"]) == sorted(_expected_examples(folder))
    assert len(written["train"]) > 3 * len(written["eval"]) > 0
    for index, name in enumerate(("train", "eval")):
        assert {_PartitionFn(record, 2, [4, 5], SplitConfig(splits=splits))
                for record in written[name]} == {index}
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    # Beside the splits, the whole item table: the movies no rating names too.
    table = read_item_catalog([examples.uri])
    items = R.read_table(folder, R.ITEMS_FILE)
    assert table.item_ids == sorted(i.item_id for i in items)
    by_id = {i.item_id: i for i in items}
    for item_id, title, year, genres in zip(table.item_ids, table.titles, table.years,
                                            table.genres):
        assert (title, year, tuple(genres)) == (by_id[item_id].title, by_id[item_id].year,
                                                by_id[item_id].genres)
    # Read as written: TFX's getter falls back to tf.Example when the property is missing.
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert examples.get_string_custom_property("file_format") == "tfrecords_gzip"


def test_input_splits_are_written_one_folder_each_counting_activity_per_file(folder, tmp_path):
    """A folder per input split (the canonical u1.base/u1.test protocol): each file's examples
    in its own split, each user's activity counted in that file alone."""
    ratings = R.read_table(folder, R.RATINGS_FILE)
    parts = {"first": ratings[:150], "second": ratings[150:]}
    data = tmp_path / "data"
    for name, part in parts.items():
        (data / name).mkdir(parents=True)
        for table in (R.USERS_FILE, R.ITEMS_FILE):
            (data / name / table).write_text(open(os.path.join(folder, table)).read())
        R.write_csv(str(data / name / R.RATINGS_FILE), R.RATINGS_COLUMNS,
                    [R.rating_row(rating) for rating in part])
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "out")
    properties = {
        "input_base": str(data),
        "input_config": proto_utils.proto_to_json(Input(splits=[
            Input.Split(name=name, pattern=f"{name}/{R.RATINGS_FILE}") for name in parts])),
        "output_config": proto_utils.proto_to_json(Output()),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP}
    Executor(BaseBeamExecutor.Context(beam_pipeline_args=[])).Do(
        {}, {"examples": [examples]}, properties)
    assert artifact_utils.decode_split_names(examples.split_names) == list(parts)
    for name, part in parts.items():
        assert sorted(_records(artifact_utils.get_split_uri([examples], name))) == sorted(
            _expected_examples(folder, part))
