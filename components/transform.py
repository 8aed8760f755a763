"""Transform module: where every raw feature becomes a model input.

Ids get vocabularies with an OOV bucket, so ids unseen in training still map to an index at
serving time. Age and year are bucketized on fixed boundaries (shared with the evaluation
slices); a missing year gets a bucket of its own. Genres stay multivalent (sparse indices).
"""

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import schema_inference

from components import features as F


def _dense(feature: tf.Tensor) -> tf.Tensor:
    """[batch, 1] fixed-length input → [batch]."""
    return tf.squeeze(feature, axis=1)


def _vocab_index(values, name: str = None):
    return tft.compute_and_apply_vocabulary(
        values, num_oov_buckets=F.OOV_BUCKETS, vocab_filename=name)


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


def preprocessing_fn(inputs):
    """tf.Transform entry point (TFX calls it by name)."""
    age = tf.cast(_dense(inputs[F.AGE]), tf.float32)
    zip_prefix = tf.strings.substr(_dense(inputs[F.ZIP_CODE]), 0, F.ZIP_PREFIX_LENGTH)
    return {
        F.USER_INDEX: _vocab_index(_dense(inputs[F.USER_ID]), F.USER_VOCAB),
        F.ITEM_INDEX: _vocab_index(_dense(inputs[F.ITEM_ID]), F.ITEM_VOCAB),
        F.AGE_BUCKET: tft.apply_buckets(
            age, bucket_boundaries=[list(map(float, F.AGE_BOUNDARIES))]),
        F.GENDER_INDEX: _vocab_index(_dense(inputs[F.GENDER])),
        F.OCCUPATION_INDEX: _vocab_index(_dense(inputs[F.OCCUPATION])),
        F.ZIP_PREFIX_INDEX: _vocab_index(zip_prefix),
        F.YEAR_BUCKET: year_bucket(inputs[F.YEAR]),
        F.GENRE_INDICES: _vocab_index(inputs[F.GENRES]),
        F.LABEL_KEY: _dense(inputs[F.LABEL]),
    }
