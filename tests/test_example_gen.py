"""ExampleGen's join emits, for every rating, the serialized example of its rating, user and
item features: the same bytes as the example built feature by feature, so hash splits keyed
on the serialized example do not move."""

import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that, equal_to
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.proto.example_gen_pb2 import Input, Output, SplitConfig
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components import features as F
from components.example_gen import (
    Executor,
    JoinRatingsWithFeatures,
    _user_of_line,
    activity_group,
    age_group,
)
from data import raw_format as R
from data import synthetic


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


def _expected_examples(folder):
    ratings = R.read_table(folder, R.RATINGS_FILE)
    users = {u.user_id: u for u in R.read_table(folder, R.USERS_FILE)}
    items = {i.item_id: i for i in R.read_table(folder, R.ITEMS_FILE)}
    counts = {}
    for rating in ratings:
        counts[rating.user_id] = counts.get(rating.user_id, 0) + 1
    return [_built_feature_by_feature(r, users[r.user_id], items[r.item_id], counts[r.user_id])
            for r in ratings]


def test_every_rating_becomes_the_bytes_of_its_joined_example(folder):
    expected = _expected_examples(folder)
    with beam.Pipeline() as pipeline:
        examples = pipeline | JoinRatingsWithFeatures({"input_base": folder}, R.RATINGS_FILE)
        assert_that(examples, equal_to(expected))


@pytest.mark.parametrize("line, users", [
    ("196,242,3,881250949", ["196"]),
    (" 196 ,242,3,881250949\r\n", ["196"]),  # as parse_rating reads it: stripped
    ("   \n", []),
])
def test_each_ratings_line_counts_for_its_user(line, users):
    assert list(_user_of_line(line)) == users


def test_the_executor_writes_every_example_once_across_the_splits(folder, tmp_path):
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
    setup_file = os.path.join(os.path.dirname(os.path.dirname(__file__)), "setup.py")
    context = BaseBeamExecutor.Context(beam_pipeline_args=[f"--setup_file={setup_file}"])
    Executor(context).Do({}, {"examples": [examples]}, properties)

    written = {}
    for name in ("train", "eval"):
        files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], name), "*.gz"))
        written[name] = [r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP")]
    assert sorted(written["train"] + written["eval"]) == sorted(_expected_examples(folder))
    assert len(written["train"]) > 3 * len(written["eval"]) > 0
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    # Read as written: TFX's getter falls back to tf.Example when the property is missing.
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert examples.get_string_custom_property("file_format") == "tfrecords_gzip"
