"""Transform module: where every raw feature becomes a model input.

Ids get vocabularies with an OOV bucket, so ids unseen in training still map to an index at
serving time. Gender, occupation and genres take their index from the schema's closed domain
when it has one (ExampleValidator stops any other value before Transform runs), so no analyzer
pass computes what the schema already lists: three vocabularies were a third of Transform's
time. Age and year are bucketized on fixed boundaries (shared with the evaluation slices); a
missing year gets a bucket of its own. Genres stay multivalent (sparse indices), and so do a
title's words, indexed in a vocabulary of the words frequent enough to be content.
"""

from typing import Dict, List, Optional

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform import schema_inference
from tfx.utils import io_utils

from components import features as F

# Categorical features indexed by their closed domain in the schema, where it declares one.
DOMAIN_FEATURES = (F.GENDER, F.OCCUPATION, F.GENRES)
SCHEMA_FILE_KEY = "schema_file"  # in Transform's custom_config: the schema ImportSchemaGen read


def _dense(feature: tf.Tensor) -> tf.Tensor:
    """[batch, 1] fixed-length input → [batch]."""
    return tf.squeeze(feature, axis=1)


def _vocab_index(values, name: str = None):
    return tft.compute_and_apply_vocabulary(
        values, num_oov_buckets=F.OOV_BUCKETS, vocab_filename=name)


def closed_domains(schema: schema_pb2.Schema) -> Dict[str, List[str]]:
    """The values of each DOMAIN_FEATURES feature's string domain, in the schema's order."""
    domains = {domain.name: list(domain.value) for domain in schema.string_domain}
    return {feature.name: domains[feature.domain] for feature in schema.feature
            if feature.name in DOMAIN_FEATURES and feature.domain in domains}


def _categorical_index(values, domain: Optional[List[str]]):
    """Index in the closed domain (anything else: the OOV indices after it), or a vocabulary's
    index when the schema leaves the domain open. Domains are read from the schema's
    top-level string_domain entries that features name."""
    if domain is None:
        return _vocab_index(values)
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(domain), tf.range(len(domain), dtype=tf.int64)),
        num_oov_buckets=F.OOV_BUCKETS)
    sparse = isinstance(values, tf.SparseTensor)
    index = table.lookup(values.values if sparse else values)
    # Declare the range, so the transformed schema tells the model how many indices exist.
    schema_inference.set_tensor_schema_override(
        index, tf.constant(0, tf.int64), tf.constant(len(domain) + F.OOV_BUCKETS - 1, tf.int64))
    return tf.SparseTensor(values.indices, index, values.dense_shape) if sparse else index


def year_bucket(year: tf.SparseTensor) -> tf.Tensor:
    """Bucket 0 holds unknown years; known years fall in 1 + their boundary bucket."""
    dense_year = tf.squeeze(
        tft.sparse_tensor_to_dense_with_shape(year, [None, 1], default_value=0), axis=1)
    known = tft.apply_buckets(tf.cast(dense_year, tf.float32),
                              bucket_boundaries=[list(map(float, F.YEAR_BOUNDARIES))])
    bucket = tf.where(dense_year > 0, known + 1, tf.zeros_like(known))
    # Declare the range, so the transformed schema tells the model how many buckets exist.
    schema_inference.set_tensor_schema_override(
        bucket, tf.constant(0, tf.int64), tf.constant(len(F.YEAR_BOUNDARIES) + 1, tf.int64))
    return bucket


def title_words(title: tf.Tensor) -> tf.SparseTensor:
    """[batch] titles → their lower-cased words, the bracketed year left out (it is a
    feature of its own): "Shawshank Redemption, The (1994)" → shawshank, redemption, the."""
    text = tf.strings.lower(title, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"\(\d{4}\)", " ")
    text = tf.strings.regex_replace(text, r"[^\pL\pN]+", " ")
    return tf.strings.split(text).to_sparse()


def preprocessing_fn(inputs, custom_config=None):
    """tf.Transform entry point (TFX calls it by name, with the Transform's custom_config)."""
    schema_file = (custom_config or {}).get(SCHEMA_FILE_KEY)
    domains = closed_domains(io_utils.parse_pbtxt_file(
        schema_file, schema_pb2.Schema())) if schema_file else {}
    age = tf.cast(_dense(inputs[F.AGE]), tf.float32)
    zip_prefix = tf.strings.substr(_dense(inputs[F.ZIP_CODE]), 0, F.ZIP_PREFIX_LENGTH)
    return {
        F.USER_INDEX: _vocab_index(_dense(inputs[F.USER_ID]), F.USER_VOCAB),
        F.ITEM_INDEX: _vocab_index(_dense(inputs[F.ITEM_ID]), F.ITEM_VOCAB),
        F.AGE_BUCKET: tft.apply_buckets(
            age, bucket_boundaries=[list(map(float, F.AGE_BOUNDARIES))]),
        F.GENDER_INDEX: _categorical_index(_dense(inputs[F.GENDER]), domains.get(F.GENDER)),
        F.OCCUPATION_INDEX: _categorical_index(_dense(inputs[F.OCCUPATION]),
                                              domains.get(F.OCCUPATION)),
        F.ZIP_PREFIX_INDEX: _vocab_index(zip_prefix),
        F.YEAR_BUCKET: year_bucket(inputs[F.YEAR]),
        F.GENRE_INDICES: _categorical_index(inputs[F.GENRES], domains.get(F.GENRES)),
        F.TITLE_TOKENS: tft.compute_and_apply_vocabulary(
            title_words(_dense(inputs[F.TITLE])), top_k=F.TITLE_WORDS,
            frequency_threshold=F.TITLE_WORD_MIN_RATINGS, num_oov_buckets=F.OOV_BUCKETS,
            vocab_filename=F.TITLE_VOCAB),
        F.LABEL_KEY: _dense(inputs[F.LABEL]),
    }
