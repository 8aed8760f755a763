"""ExampleGen that joins each rating with its user's and item's features, in Beam.

The side tables (users.csv, items.csv) sit beside the ratings file that the input pattern
matches and are broadcast as side inputs, so the join runs unchanged on Dataflow, Flink or
Spark. Each user's rating count in the span becomes the `user_activity` slice. The executor
writes the splits in the order they were read (TFX's executor shuffles them first, holding
them all in memory), then counts the examples written against the ratings read
(components/example_count.py).
"""

import bisect
import os
from typing import Any, Dict, Iterable, List, Optional

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, wrappers_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.proto.example_gen_pb2 import CustomConfig, Input, Output
from tfx.proto.range_config_pb2 import RangeConfig
from tfx.types import Artifact, artifact_utils
from tfx.types.standard_component_specs import (
    EXAMPLES_KEY,
    INPUT_CONFIG_KEY,
    OUTPUT_CONFIG_KEY,
    OUTPUT_DATA_FORMAT_KEY,
    OUTPUT_FILE_FORMAT_KEY,
)
from tfx.utils import proto_utils

from components import example_bytes
from components import features as F
from components.example_count import check_every_rating_written
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


def user_part(user: R.User, rating_count: int) -> tf.train.Example:
    """The features every example of this user shares (its slicing column included)."""
    example = tf.train.Example()
    feature = example.features.feature
    for name, value in ((F.USER_ID, user.user_id), (F.GENDER, user.gender),
                        (F.OCCUPATION, user.occupation), (F.ZIP_CODE, user.zip_code),
                        (F.AGE_GROUP, age_group(user.age)),
                        (F.USER_ACTIVITY, activity_group(rating_count))):
        feature[name].bytes_list.value.append(value.encode())
    feature[F.AGE].int64_list.value.append(user.age)
    return example


def item_part(item: R.Item) -> tf.train.Example:
    """The features every example of this item shares."""
    example = tf.train.Example()
    feature = example.features.feature
    feature[F.ITEM_ID].bytes_list.value.append(item.item_id.encode())
    feature[F.TITLE].bytes_list.value.append(item.title.encode())
    feature[F.GENRES].bytes_list.value.extend(genre.encode() for genre in item.genres)
    if item.year:
        feature[F.YEAR].int64_list.value.append(item.year)
    return example


def joined(rating: R.Rating, user: tf.train.Example, item: tf.train.Example
           ) -> tf.train.Example:
    """One rating with its user's and item's parts, as a proto (the join itself assembles
    bytes instead: _JoinFeatures)."""
    example = tf.train.Example()
    example.CopyFrom(user)
    example.MergeFrom(item)
    feature = example.features.feature
    feature[F.RATING].float_list.value.append(rating.rating)
    feature[F.TIMESTAMP].int64_list.value.append(rating.timestamp)
    return example


def to_example(rating: R.Rating, user: R.User, item: R.Item, user_rating_count: int
               ) -> tf.train.Example:
    """One rating with its user's and item's raw features, plus the slicing columns."""
    return joined(rating, user_part(user, user_rating_count), item_part(item))


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


class _JoinFeatures(beam.DoFn):
    """Joins each rating with its user's and item's features; emits the serialized example
    (deterministic bytes: the ones ExampleGen's hash split keys on). Each user's and item's
    features are serialized once per worker, each rating's bytes concatenated from them
    (components/example_bytes.py)."""

    def __init__(self, ratings_path: str):
        self._ratings_path = ratings_path

    def setup(self):
        self._users: Dict[str, List[example_bytes.Entry]] = {}
        self._items: Dict[str, List[example_bytes.Entry]] = {}
        self._ratings: Dict[float, List[example_bytes.Entry]] = {}

    def process(self, rating: R.Rating, users: Dict[str, R.User], items: Dict[str, R.Item],
                counts: Dict[str, int]) -> Iterable[bytes]:
        user = self._users.get(rating.user_id)
        if user is None:
            if rating.user_id not in users:
                raise R.DataError(self._ratings_path, None, F.USER_ID,
                                  f"user {rating.user_id!r} is not in {R.USERS_FILE}")
            user = self._users[rating.user_id] = example_bytes.entries(
                user_part(users[rating.user_id], counts[rating.user_id]))
        item = self._items.get(rating.item_id)
        if item is None:
            if rating.item_id not in items:
                raise R.DataError(self._ratings_path, None, F.ITEM_ID,
                                  f"item {rating.item_id!r} is not in {R.ITEMS_FILE}")
            item = self._items[rating.item_id] = example_bytes.entries(
                item_part(items[rating.item_id]))
        score = self._ratings.get(rating.rating)
        if score is None:
            example = tf.train.Example()
            example.features.feature[F.RATING].float_list.value.append(rating.rating)
            score = self._ratings[rating.rating] = example_bytes.entries(example)
        yield example_bytes.example_bytes(
            [*user, *item, *score, example_bytes.int64_entry(F.TIMESTAMP, rating.timestamp)])


def _user_of_line(line: str) -> Iterable[str]:
    """The user id of a ratings line, as parse_rating reads it; none for a blank line (a
    malformed one is refused by the join's own parse)."""
    if line.strip():
        yield R.split_csv_line(line)[R.RATINGS_COLUMNS.index(F.USER_ID)].strip()


def ratings_path(exec_properties: Dict[str, Any], split_pattern: str) -> str:
    """The ratings file an input split's pattern names in the raw data folder."""
    return os.path.join(exec_properties[INPUT_BASE_KEY], split_pattern)


class JoinRatingsWithFeatures(beam.PTransform):
    """Reads a raw data folder's ratings and side tables and emits joined tf.Examples."""

    def __init__(self, exec_properties: Dict[str, Any], split_pattern: str):
        super().__init__()
        self._ratings_path = ratings_path(exec_properties, split_pattern)
        self._folder = os.path.dirname(self._ratings_path)

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        ratings = _read_table(pipeline, self._ratings_path, "Ratings")
        users = _read_table(pipeline, os.path.join(self._folder, R.USERS_FILE), "Users")
        items = _read_table(pipeline, os.path.join(self._folder, R.ITEMS_FILE), "Items")
        # Counted from a second read of the file, not from `ratings`: a PCollection read by
        # two stages is held whole between them by Beam's local runner (at 10M ratings, GBs),
        # while the join then streams from the file.
        counts = (pipeline
                  | "ReadRatingUsers" >> beam.io.ReadFromText(self._ratings_path,
                                                              skip_header_lines=1)
                  | "UserOfRating" >> beam.FlatMap(_user_of_line)
                  | "CountPerUser" >> beam.combiners.Count.PerElement())
        return (ratings
                | "JoinFeatures" >> beam.ParDo(
                    _JoinFeatures(self._ratings_path),
                    users=beam.pvalue.AsDict(
                        users | "KeyUsers" >> beam.Map(lambda u: (u.user_id, u))),
                    items=beam.pvalue.AsDict(
                        items | "KeyItems" >> beam.Map(lambda i: (i.item_id, i))),
                    counts=beam.pvalue.AsDict(counts)))


def split_uris_by_ratings_file(exec_properties: Dict[str, Any], examples: Artifact
                               ) -> Dict[str, List[str]]:
    """Each ratings file ExampleGen read, with the output splits its examples went to: all
    of them for a hash split, its own for a folder per split."""
    input_config, output_config = Input(), Output()
    proto_utils.json_to_proto(exec_properties[INPUT_CONFIG_KEY], input_config)
    proto_utils.json_to_proto(exec_properties[OUTPUT_CONFIG_KEY], output_config)
    names = example_gen_utils.generate_output_split_names(input_config, output_config)
    paths = [ratings_path(exec_properties, split.pattern) for split in input_config.splits]
    uris = [artifact_utils.get_split_uri([examples], name) for name in names]
    if output_config.split_config.splits:
        return {paths[0]: uris}
    return {path: [uri] for path, uri in zip(paths, uris)}


class Executor(BaseExampleGenExecutor):
    """FileBasedExampleGen executor over the project's raw data folder; fails, with nothing
    published, unless every rating was written as one example."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 - TFX API
        return JoinRatingsWithFeatures

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX API
        """BaseExampleGenExecutor.Do, less its Reshuffle before writing: on Beam's local
        runner a Reshuffle holds every serialized example in memory (with the parsed ratings,
        the 10M run's 19.7 GB peak), and order is the Trainer's business (it sorts the
        examples, then shuffles them every epoch)."""
        [examples] = output_dict[EXAMPLES_KEY]
        with self._make_beam_pipeline() as pipeline:
            splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
            examples.split_names = artifact_utils.encode_split_names(list(splits))
            for name, split in splits.items():
                path = os.path.join(artifact_utils.get_split_uri([examples], name),
                                    write_split.DEFAULT_FILE_NAME)
                _ = split | f"WriteSplit[{name}]" >> beam.io.WriteToTFRecord(
                    path, file_name_suffix=".gz")
        examples_utils.set_payload_format(examples, exec_properties[OUTPUT_DATA_FORMAT_KEY])
        examples_utils.set_file_format(examples, write_split.to_file_format_str(
            exec_properties[OUTPUT_FILE_FORMAT_KEY]))
        check_every_rating_written(split_uris_by_ratings_file(exec_properties, examples))


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
