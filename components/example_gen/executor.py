"""ExampleGen that joins each rating with its user's and item's features, in Beam.

The side tables (users.csv, items.csv) sit beside the ratings file that the input pattern
matches and are broadcast as side inputs, so the join runs unchanged on Dataflow, Flink or
Spark. The ratings file is read in byte-range shards, each joined, split (TFX's hash split, the
same bucket for the same example) and written to its own files by one DoFn call. Each user's
rating count in the span becomes the `user_activity` slice. The executor then counts the
examples written against the ratings read (components/example_gen/example_count.py).
"""

import bisect
import collections
import contextlib
import hashlib
import itertools
import os
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf
from google.protobuf import any_pb2, wrappers_pb2
from tfx.components import FileBasedExampleGen
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
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

from components import features as F
from components.example_gen import example_bytes, text_shards
from components.example_gen.example_count import check_every_rating_written
from components.example_gen.item_catalog import WriteItemCatalog
from data import raw_format as R

INPUT_BASE_KEY = "input_base"
INCOMPLETE = ".incomplete"  # in the name of a shard's split file while it is being written


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
    bytes instead: ExampleJoiner)."""
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


def _check_header(path: str) -> None:
    """A raw file's header, checked against its columns before Beam reads past it."""
    with tf.io.gfile.GFile(path) as handle:
        header = R.split_csv_line(handle.readline())
    R.check_header(path, header, R.COLUMNS[os.path.basename(path)])


def _read_table(pipeline: beam.Pipeline, path: str, label: str) -> beam.PCollection:
    name = os.path.basename(path)
    _check_header(path)
    return (pipeline
            | f"Read{label}" >> beam.io.ReadFromText(path, skip_header_lines=1)
            | f"Parse{label}" >> beam.ParDo(_ParseRows(path, R.PARSERS[name])))


class ExampleJoiner:
    """Joins ratings with their user's and item's features into serialized examples
    (deterministic bytes: the ones ExampleGen's hash split keys on). Each user's and item's
    features are serialized once, each rating's bytes concatenated from them
    (components/example_gen/example_bytes.py)."""

    def __init__(self, ratings_path: str, users: Dict[str, R.User], items: Dict[str, R.Item],
                 counts: Dict[str, int]):
        self._ratings_path = ratings_path
        self._users, self._items, self._counts = users, items, counts
        self._user_entries: Dict[str, List[example_bytes.Entry]] = {}
        self._item_entries: Dict[str, List[example_bytes.Entry]] = {}
        self._rating_entries: Dict[float, List[example_bytes.Entry]] = {}

    def example(self, rating: R.Rating) -> bytes:
        user = self._user_entries.get(rating.user_id)
        if user is None:
            if rating.user_id not in self._users:
                raise R.DataError(self._ratings_path, None, F.USER_ID,
                                  f"user {rating.user_id!r} is not in {R.USERS_FILE}")
            user = self._user_entries[rating.user_id] = example_bytes.entries(
                user_part(self._users[rating.user_id], self._counts[rating.user_id]))
        item = self._item_entries.get(rating.item_id)
        if item is None:
            if rating.item_id not in self._items:
                raise R.DataError(self._ratings_path, None, F.ITEM_ID,
                                  f"item {rating.item_id!r} is not in {R.ITEMS_FILE}")
            item = self._item_entries[rating.item_id] = example_bytes.entries(
                item_part(self._items[rating.item_id]))
        score = self._rating_entries.get(rating.rating)
        if score is None:
            example = tf.train.Example()
            example.features.feature[F.RATING].float_list.value.append(rating.rating)
            score = self._rating_entries[rating.rating] = example_bytes.entries(example)
        return example_bytes.example_bytes(
            [*user, *item, *score, example_bytes.int64_entry(F.TIMESTAMP, rating.timestamp)])


def ratings_in(shard: text_shards.Shard) -> Iterator[R.Rating]:
    """The shard's ratings, parsed as the raw format says; blank lines skipped."""
    for line in text_shards.lines(shard):
        if line.strip():
            yield R.parse_rating(shard.path, None, R.split_csv_line(line))


def hash_split(buckets: Sequence[int]) -> Callable[[bytes], int]:
    """TFX's hash split (base_example_gen_executor._PartitionFn), the same bucket for the same
    bytes: the index of the split whose cumulative hash_buckets first exceed the example's
    SHA-256 modulo their total."""
    def split_of(record: bytes) -> int:
        return bisect.bisect(buckets, int(hashlib.sha256(record).hexdigest(), 16) % buckets[-1])
    return split_of


def _user_of_line(line: str) -> Iterable[str]:
    """The user id of a ratings line, as parse_rating reads it; none for a blank line (a
    malformed one is refused by the join's own parse)."""
    if line.strip():
        yield R.split_csv_line(line)[R.RATINGS_COLUMNS.index(F.USER_ID)].strip()


class _CountRatingsPerUser(beam.DoFn):
    """Each user's ratings in one shard, as one dict: one element per shard crosses Beam, not
    one per rating. Only the user id column is read: the join parses each row in full."""

    def process(self, shard: text_shards.Shard) -> Iterable[Dict[str, int]]:
        yield dict(collections.Counter(
            user for line in text_shards.lines(shard) for user in _user_of_line(line)))


def _summed_counts(counts: Iterable[Dict[str, int]]) -> Dict[str, int]:
    total: collections.Counter = collections.Counter()
    for shard_counts in counts:
        total.update(shard_counts)
    return dict(total)


def _discard(writers: Sequence[tf.io.TFRecordWriter], paths: Sequence[str]) -> None:
    """Closes and deletes what a failed attempt wrote, keeping the error that failed it."""
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.close()
    for path in paths:
        with contextlib.suppress(Exception):
            tf.io.gfile.remove(path)


class _WriteShard(beam.DoFn):
    """Joins a shard's ratings and writes them, split by split, to a gzipped TFRecord file of
    each split named after the shard. Each attempt writes under names of its own (a runner
    may run two attempts of a shard at once) and renames its files into place once whole, so
    a retried shard leaves the same files and a failed one none."""

    def __init__(self, split_uris: Sequence[str], buckets: Optional[Sequence[int]]):
        self._split_uris, self._buckets = list(split_uris), buckets

    def process(self, shard: text_shards.Shard, users: Dict[str, R.User],
                items: Dict[str, R.Item], counts: Dict[str, int]) -> Iterable[int]:
        joiner = ExampleJoiner(shard.path, users, items, counts)
        split_of = hash_split(self._buckets) if self._buckets else lambda record: 0
        names = [os.path.join(uri, f"{write_split.DEFAULT_FILE_NAME}-{shard.index:05d}-of-"
                                   f"{shard.count:05d}.gz") for uri in self._split_uris]
        attempt = f"{INCOMPLETE}-{uuid.uuid4().hex}"
        writers: List[tf.io.TFRecordWriter] = []
        written = 0
        try:
            for name in names:
                writers.append(tf.io.TFRecordWriter(name + attempt,
                                                    tf.io.TFRecordOptions("GZIP")))
            for rating in ratings_in(shard):
                record = joiner.example(rating)
                writers[split_of(record)].write(record)
                written += 1
            for writer in writers:
                writer.close()
        except BaseException:
            _discard(writers, [name + attempt for name in names])
            raise
        for name in names:
            tf.io.gfile.rename(name + attempt, name, overwrite=True)
        yield written


def _remove_incomplete(split_uris: Iterable[str]) -> None:
    """Files of attempts that died before cleaning up (a killed worker): TFX's readers take
    every file of a split folder."""
    for uri in split_uris:
        for path in tf.io.gfile.glob(os.path.join(uri, f"*{INCOMPLETE}-*")):
            tf.io.gfile.remove(path)


def ratings_path(exec_properties: Dict[str, Any], split_pattern: str) -> str:
    """The ratings file an input split's pattern names in the raw data folder."""
    return os.path.join(exec_properties[INPUT_BASE_KEY], split_pattern)


class WriteJoinedExamples(beam.PTransform):
    """Reads one ratings file and its folder's side tables; writes each rating, joined with
    its user's and item's features, as one example of one of split_uris (by TFX's hash split
    over buckets, or all to the one split when buckets is None). The ratings are read in
    byte-range shards (components/example_gen/text_shards.py), each counted, joined, split and
    written by one DoFn call: Beam's per-element cost was ~13% of ExampleGen at 1M ratings, and the
    shard's examples never cross Beam at all."""

    def __init__(self, ratings_file: str, split_uris: Sequence[str],
                 buckets: Optional[Sequence[int]] = None, catalog_uri: Optional[str] = None):
        """catalog_uri: the Examples artifact to write the folder's whole item table into
        (components/example_gen/item_catalog.py)."""
        super().__init__()
        self._ratings_path, self._split_uris, self._buckets = ratings_file, split_uris, buckets
        self._folder = os.path.dirname(ratings_file)
        self._catalog_uri = catalog_uri

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        _check_header(self._ratings_path)
        # Reshuffled, so that the runner spreads the shards over its workers.
        shards = (pipeline
                  | "Shards" >> beam.Create(text_shards.shards(self._ratings_path))
                  | "SpreadShards" >> beam.Reshuffle())
        users = _read_table(pipeline, os.path.join(self._folder, R.USERS_FILE), "Users")
        items = _read_table(pipeline, os.path.join(self._folder, R.ITEMS_FILE), "Items")
        if self._catalog_uri is not None:
            _ = items | "WriteItemCatalog" >> WriteItemCatalog(self._catalog_uri, item_part)
        counts = (shards
                  | "CountPerUser" >> beam.ParDo(_CountRatingsPerUser())
                  | "SumCounts" >> beam.CombineGlobally(_summed_counts))
        return (shards
                | "JoinAndWrite" >> beam.ParDo(
                    _WriteShard(self._split_uris, self._buckets),
                    users=beam.pvalue.AsDict(
                        users | "KeyUsers" >> beam.Map(lambda u: (u.user_id, u))),
                    items=beam.pvalue.AsDict(
                        items | "KeyItems" >> beam.Map(lambda i: (i.item_id, i))),
                    counts=beam.pvalue.AsSingleton(counts)))


# Each ratings file read, with the split folders its examples go to and, for a hash split of
# one file over several, the splits' cumulative hash buckets (None: all to its one split).
Writes = List[Tuple[str, List[str], Optional[List[int]]]]


def _configs(exec_properties: Dict[str, Any]) -> Tuple[Input, Output]:
    input_config, output_config = Input(), Output()
    proto_utils.json_to_proto(exec_properties[INPUT_CONFIG_KEY], input_config)
    proto_utils.json_to_proto(exec_properties[OUTPUT_CONFIG_KEY], output_config)
    return input_config, output_config


def split_names(exec_properties: Dict[str, Any]) -> List[str]:
    """The output splits, named as TFX's ExampleGen names them."""
    return example_gen_utils.generate_output_split_names(*_configs(exec_properties))


def _writes(exec_properties: Dict[str, Any], examples: Artifact) -> Writes:
    """Where ExampleGen's configs send each ratings file: a hash split of the one input over
    the output splits, or a folder per input split. examples: its split_names set (the
    split folders are named from them)."""
    input_config, output_config = _configs(exec_properties)
    names = split_names(exec_properties)
    paths = [ratings_path(exec_properties, split.pattern) for split in input_config.splits]
    uris = [artifact_utils.get_split_uri([examples], name) for name in names]
    split_config = output_config.split_config
    if not split_config.splits:
        return [(path, [uri], None) for path, uri in zip(paths, uris)]
    if split_config.HasField("partition_feature_name"):
        raise ValueError(f"output_config: partition_feature_name "
                         f"{split_config.partition_feature_name!r} is not supported; this "
                         "ExampleGen splits by the hash of each example")
    buckets = list(itertools.accumulate(split.hash_buckets for split in split_config.splits))
    return [(paths[0], uris, buckets)]


def split_uris_by_ratings_file(exec_properties: Dict[str, Any], examples: Artifact
                               ) -> Dict[str, List[str]]:
    """Each ratings file ExampleGen read, with the output splits its examples went to: all
    of them for a hash split, its own for a folder per split."""
    return {path: uris for path, uris, _ in _writes(exec_properties, examples)}


class Executor(BaseBeamExecutor):
    """FileBasedExampleGen executor over the project's raw data folder; fails, with nothing
    published, unless every rating was written as one example."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX API
        """BaseExampleGenExecutor.Do's outputs, written shard by shard (WriteJoinedExamples)
        instead of example by example, and with no Reshuffle before writing: on Beam's local
        runner that held every serialized example in memory (the 10M run's 19.7 GB peak);
        order is the Trainer's business (it sorts the examples, then shuffles them every
        epoch)."""
        [examples] = output_dict[EXAMPLES_KEY]
        examples.split_names = artifact_utils.encode_split_names(split_names(exec_properties))
        writes = _writes(exec_properties, examples)
        for _, uris, _ in writes:
            for uri in uris:
                tf.io.gfile.makedirs(uri)
        with self._make_beam_pipeline() as pipeline:
            for number, (path, uris, buckets) in enumerate(writes):
                # The item table of the first ratings file's folder (with a folder per split,
                # each holds the same tables).
                _ = pipeline | f"WriteExamples[{number}]" >> WriteJoinedExamples(
                    path, uris, buckets, catalog_uri=examples.uri if number == 0 else None)
        _remove_incomplete(uri for _, uris, _ in writes for uri in uris)
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
