"""ExampleGen that joins each rating with its user's and item's features, in Beam.

The side tables (users.csv, items.csv) sit beside the ratings file that the input pattern
matches and are broadcast as side inputs, so the join runs unchanged on Dataflow, Flink or
Spark. Each user's rating count in the span becomes the `user_activity` slice.
"""

import bisect
import os
from typing import Any, Dict, Iterable, Optional

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, wrappers_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.components.base import executor_spec
from tfx.proto.example_gen_pb2 import CustomConfig
from tfx.v1.proto import Input, Output, RangeConfig

from components import features as F
from data import raw_format as R

INPUT_BASE_KEY = "input_base"


def _bucket_label(value: int, boundaries) -> str:
    """'<18', '18-24', ..., '56+' style labels for the bucket that `value` falls in."""
    index = bisect.bisect_right(boundaries, value)
    if index == 0:
        return f"<{boundaries[0]}"
    if index == len(boundaries):
        return f"{boundaries[-1]}+"
    return f"{boundaries[index - 1]}-{boundaries[index] - 1}"


def age_group(age: int) -> str:
    return _bucket_label(age, F.AGE_BOUNDARIES)


def activity_group(rating_count: int) -> str:
    return _bucket_label(rating_count, F.ACTIVITY_BOUNDARIES)


def _bytes(*values: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _ints(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(*values: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def to_example(rating: R.Rating, user: R.User, item: R.Item, user_rating_count: int
               ) -> tf.train.Example:
    """One rating with its user's and item's raw features, plus the slicing columns."""
    feature = {
        F.USER_ID: _bytes(rating.user_id),
        F.ITEM_ID: _bytes(rating.item_id),
        F.RATING: _floats(rating.rating),
        F.TIMESTAMP: _ints(rating.timestamp),
        F.AGE: _ints(user.age),
        F.GENDER: _bytes(user.gender),
        F.OCCUPATION: _bytes(user.occupation),
        F.ZIP_CODE: _bytes(user.zip_code),
        F.TITLE: _bytes(item.title),
        F.GENRES: _bytes(*item.genres),
        F.AGE_GROUP: _bytes(age_group(user.age)),
        F.USER_ACTIVITY: _bytes(activity_group(user_rating_count)),
    }
    if item.year:
        feature[F.YEAR] = _ints(item.year)
    return tf.train.Example(features=tf.train.Features(feature=feature))


class _ParseRows(beam.DoFn):
    """Parses CSV lines of one raw file with the shared raw-format parser."""

    def __init__(self, path: str, parse):
        self._path, self._parse = path, parse

    def process(self, line: str) -> Iterable[Any]:
        if line.strip():
            yield self._parse(self._path, None, R.split_csv_line(line))


def _read_table(pipeline: beam.Pipeline, path: str, label: str) -> beam.PCollection:
    name = os.path.basename(path)
    with tf.io.gfile.GFile(path) as handle:
        header = R.split_csv_line(handle.readline())
    R.check_header(path, header, R.COLUMNS[name])
    return (pipeline
            | f"Read{label}" >> beam.io.ReadFromText(path, skip_header_lines=1)
            | f"Parse{label}" >> beam.ParDo(_ParseRows(path, R.PARSERS[name])))


def _join(rating: R.Rating, users: Dict[str, R.User], items: Dict[str, R.Item],
          counts: Dict[str, int], ratings_path: str) -> tf.train.Example:
    user = users.get(rating.user_id)
    if user is None:
        raise R.DataError(ratings_path, None, F.USER_ID,
                          f"user {rating.user_id!r} is not in {R.USERS_FILE}")
    item = items.get(rating.item_id)
    if item is None:
        raise R.DataError(ratings_path, None, F.ITEM_ID,
                          f"item {rating.item_id!r} is not in {R.ITEMS_FILE}")
    return to_example(rating, user, item, counts[rating.user_id])


class JoinRatingsWithFeatures(beam.PTransform):
    """Reads a raw data folder's ratings and side tables and emits joined tf.Examples."""

    def __init__(self, exec_properties: Dict[str, Any], split_pattern: str):
        super().__init__()
        self._ratings_path = os.path.join(exec_properties[INPUT_BASE_KEY], split_pattern)
        self._folder = os.path.dirname(self._ratings_path)

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        ratings = _read_table(pipeline, self._ratings_path, "Ratings")
        users = _read_table(pipeline, os.path.join(self._folder, R.USERS_FILE), "Users")
        items = _read_table(pipeline, os.path.join(self._folder, R.ITEMS_FILE), "Items")
        counts = (ratings
                  | "UserOfRating" >> beam.Map(lambda r: (r.user_id, 1))
                  | "CountPerUser" >> beam.CombinePerKey(sum))
        return (ratings
                | "JoinFeatures" >> beam.Map(
                    _join,
                    users=beam.pvalue.AsDict(
                        users | "KeyUsers" >> beam.Map(lambda u: (u.user_id, u))),
                    items=beam.pvalue.AsDict(
                        items | "KeyItems" >> beam.Map(lambda i: (i.item_id, i))),
                    counts=beam.pvalue.AsDict(counts),
                    ratings_path=self._ratings_path))


class Executor(BaseExampleGenExecutor):
    """FileBasedExampleGen executor over the project's raw data folder."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 - TFX API
        return JoinRatingsWithFeatures


def create_example_gen(input_base: str, input_config: Input, output_config: Output,
                       code_version: str, range_config: Optional[RangeConfig] = None
                       ) -> FileBasedExampleGen:
    """code_version only keys the cache: a new executor version re-reads the data."""
    version = any_pb2.Any()
    version.Pack(wrappers_pb2.StringValue(value=code_version))
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=output_config,
        range_config=range_config,
        custom_config=CustomConfig(custom_config=version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor),
    )
