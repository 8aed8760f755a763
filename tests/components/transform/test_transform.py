"""preprocessing_fn, run through tf.Transform itself on a handful of raw examples."""

import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata
from tfx.utils import io_utils

from components import features as F
from components.transform.preprocessing import (
    SCHEMA_FILE_KEY,
    closed_domains,
    preprocessing_fn,
    title_words,
)
from pipeline.config import SCHEMA_FILE


def _raw(user, item, rating, age, gender, occupation, zip_code, genres, year=None, title="t"):
    row = {F.USER_ID: [user], F.ITEM_ID: [item], F.RATING: [rating], F.TIMESTAMP: [1],
           F.AGE: [age], F.GENDER: [gender], F.OCCUPATION: [occupation], F.ZIP_CODE: [zip_code],
           F.TITLE: [title], F.GENRES: genres, F.YEAR: [] if year is None else [year],
           F.AGE_GROUP: ["x"], F.USER_ACTIVITY: ["x"]}
    return row


RAW = [
    _raw("u1", "i1", 4.0, 17, "F", "student", "12345", ["Drama", "Comedy"], 1995),
    _raw("u1", "i2", 3.0, 17, "F", "student", "12345", ["Drama"], None),
    _raw("u2", "i1", 5.0, 56, "M", "writer", "T8H1N", ["Action"], 1925),
    _raw("u1", "i3", 1.0, 18, "F", "student", "12399", ["Comedy"], 2005),
]


SCHEMA = io_utils.parse_pbtxt_file(SCHEMA_FILE, schema_pb2.Schema())
DOMAINS = closed_domains(SCHEMA)


def _without_domains(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    open_schema = schema_pb2.Schema()
    open_schema.CopyFrom(schema)
    for feature in open_schema.feature:
        feature.ClearField("domain")
    return open_schema


def _analyze_and_transform(tmp_path_factory, schema_file, force_tf_compat_v1=False, raw=RAW):
    metadata = dataset_metadata.DatasetMetadata(SCHEMA)
    temp = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=temp, force_tf_compat_v1=force_tf_compat_v1):
        (data, _), transform_fn = (
            (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(functools.partial(
                preprocessing_fn, custom_config={SCHEMA_FILE_KEY: schema_file})))
        output_dir = str(tmp_path_factory.mktemp("transform_output"))
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return data, tft.TFTransformOutput(output_dir)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    return _analyze_and_transform(tmp_path_factory, SCHEMA_FILE)


@pytest.fixture(scope="module")
def open_domains(tmp_path_factory):
    """The same data where the schema declares no closed domain: vocabularies instead."""
    schema_file = str(tmp_path_factory.mktemp("schema") / "schema.pbtxt")
    io_utils.write_pbtxt_file(schema_file, _without_domains(SCHEMA))
    return _analyze_and_transform(tmp_path_factory, schema_file)


def test_ids_get_frequency_ordered_vocabularies(transformed):
    data, output = transformed
    assert [row[F.USER_INDEX] for row in data] == [0, 0, 1, 0]  # u1 is the most frequent
    assert output.vocabulary_by_name(F.USER_VOCAB) == [b"u1", b"u2"]
    assert output.num_buckets_for_transformed_feature(F.ITEM_INDEX) == 3 + F.OOV_BUCKETS


def test_unknown_ids_map_to_the_oov_bucket_at_serving_time(transformed):
    _, output = transformed
    result = output.transform_features_layer()(
        {F.USER_ID: tf.constant([["u2"], ["never-seen"]]),
         F.ITEM_ID: tf.constant([["i1"], ["nope"]])})
    np.testing.assert_array_equal(result[F.USER_INDEX].numpy(), [1, 2])
    assert result[F.ITEM_INDEX].numpy()[1] == 3  # three items known, index 3 is OOV


def test_age_and_year_are_bucketized_on_fixed_boundaries(transformed):
    data, output = transformed
    assert [row[F.AGE_BUCKET] for row in data] == [0, 0, 6, 1]  # <18, <18, 56+, 18-24
    # Unknown year → 0; 1995 → 1 + bucket of [1995, 2000); 1925 → 1; 2005 → 1 + [2000, 2010).
    assert [row[F.YEAR_BUCKET] for row in data] == [8, 0, 1, 9]
    assert output.num_buckets_for_transformed_feature(F.YEAR_BUCKET) == len(F.YEAR_BOUNDARIES) + 2


def test_closed_domains_come_from_the_schema():
    assert DOMAINS[F.GENDER] == ["F", "M"]
    assert len(DOMAINS[F.OCCUPATION]) == 21 and DOMAINS[F.OCCUPATION][0] == "administrator"
    assert DOMAINS[F.GENRES][:2] == ["unknown", "Action"] and len(DOMAINS[F.GENRES]) == 19
    assert closed_domains(_without_domains(SCHEMA)) == {}


def test_closed_domain_features_index_in_the_schemas_order(transformed):
    data, output = transformed
    assert [row[F.GENDER_INDEX] for row in data] == [0, 0, 1, 0]  # F, F, M, F
    occupations = DOMAINS[F.OCCUPATION]
    assert [row[F.OCCUPATION_INDEX] for row in data] == [
        occupations.index(name) for name in ("student", "student", "writer", "student")]
    assert [sorted(row[F.GENRE_INDICES]) for row in data] == [
        sorted(DOMAINS[F.GENRES].index(g) for g in genres)
        for genres in (["Drama", "Comedy"], ["Drama"], ["Action"], ["Comedy"])]
    for feature, index in ((F.GENDER, F.GENDER_INDEX), (F.OCCUPATION, F.OCCUPATION_INDEX),
                           (F.GENRES, F.GENRE_INDICES)):
        assert (output.num_buckets_for_transformed_feature(index)
                == len(DOMAINS[feature]) + F.OOV_BUCKETS)


@pytest.mark.parametrize("force_tf_compat_v1", [True, False])
def test_values_outside_a_closed_domain_map_to_its_oov_index_at_serving_time(
        tmp_path_factory, force_tf_compat_v1):
    """ExampleValidator stops such values in training data; a serving request may still carry
    one. Both of TFT's modes: the pipeline runs the TF1 graph mode."""
    _, output = _analyze_and_transform(tmp_path_factory, SCHEMA_FILE, force_tf_compat_v1)
    result = output.transform_features_layer()(
        {F.GENDER: tf.constant([["M"], ["X"]]), F.OCCUPATION: tf.constant([["writer"], ["?"]]),
         F.GENRES: tf.sparse.from_dense(tf.constant([["Action", "Polka"]]))})
    np.testing.assert_array_equal(result[F.GENDER_INDEX].numpy(), [1, 2])
    np.testing.assert_array_equal(result[F.OCCUPATION_INDEX].numpy(),
                                  [DOMAINS[F.OCCUPATION].index("writer"), 21])
    np.testing.assert_array_equal(result[F.GENRE_INDICES].values.numpy(), [1, 19])


def test_open_domains_get_vocabularies(open_domains):
    data, output = open_domains
    genders = [row[F.GENDER_INDEX] for row in data]
    assert genders == [0, 0, 1, 0]  # F is the more frequent
    assert output.num_buckets_for_transformed_feature(F.GENDER_INDEX) == 2 + F.OOV_BUCKETS
    assert output.num_buckets_for_transformed_feature(F.GENRE_INDICES) == 3 + F.OOV_BUCKETS


def test_zip_prefix(transformed):
    data, output = transformed
    zips = [row[F.ZIP_PREFIX_INDEX] for row in data]
    assert zips[0] == zips[1] == zips[3] != zips[2]  # '123' shared, 'T8H' apart
    assert output.num_buckets_for_transformed_feature(F.ZIP_PREFIX_INDEX) == 2 + F.OOV_BUCKETS


def test_genres_stay_multivalent(transformed):
    data, _ = transformed
    genres = [sorted(row[F.GENRE_INDICES]) for row in data]
    assert len(genres[0]) == 2 and genres[1] == [g for g in genres[0] if g in genres[1]]
    assert len(set(genres[2]) & set(genres[0])) == 0


def test_label_passes_through(transformed):
    data, _ = transformed
    assert [row[F.LABEL_KEY] for row in data] == [4.0, 3.0, 5.0, 1.0]


def test_title_words_are_lower_cased_without_the_year():
    words = title_words(tf.constant(["Shawshank Redemption, The (1994)", "Amélie (2001)",
                                     "8 1/2 (1963)", ""]))
    assert tf.RaggedTensor.from_sparse(words).to_list() == [
        [b"shawshank", b"redemption", b"the"], ["amélie".encode()], [b"8", b"1", b"2"], []]


def test_title_words_of_too_few_ratings_share_the_oov_index(tmp_path_factory):
    """Words of 10 or more ratings' titles get an index each (F.TITLE_WORD_MIN_RATINGS);
    rarer ones fall in the OOV bucket, as at serving time."""
    raw = ([_raw("u1", "i1", 4.0, 17, "F", "student", "12345", ["Drama"], 1977,
                 title="Star Wars (1977)")] * 10
           + [_raw("u2", "i2", 3.0, 17, "F", "student", "12345", ["Drama"], 2002,
                   title="Trek: Star Nemesis (2002)")] * 2)
    data, output = _analyze_and_transform(tmp_path_factory, SCHEMA_FILE, raw=raw)
    assert output.num_buckets_for_transformed_feature(F.TITLE_TOKENS) == 2 + F.OOV_BUCKETS
    star, wars = data[0][F.TITLE_TOKENS].tolist()
    assert {star, wars} == {0, 1} and data[-1][F.TITLE_TOKENS].tolist() == [2, star, 2]
    assert output.vocabulary_by_name(F.TITLE_VOCAB) == [b"star", b"wars"]
