"""Example bytes concatenated from per-feature entries are the bytes of the proto's own
deterministic serialization (ExampleGen's hash split keys on them)."""

import pytest
import tensorflow as tf

from components.example_gen.example_bytes import entries, example_bytes, int64_entry


def _example(**features) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature=features))


def _bytes(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float(*values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def test_entries_of_several_examples_join_into_their_merged_example():
    user = _example(user_id=_bytes(b"196"), age=_int64(49), zip_code=_bytes(b"55105"))
    item = _example(item_id=_bytes(b"242"), genres=_bytes(b"Comedy", b"Drama"),
                    title=_bytes("Kolya (1996) — é".encode()))
    rating = _example(rating=_float(3.5), empty=_int64())
    merged = tf.train.Example()
    for part in (user, item, rating):
        merged.MergeFrom(part)
    assert (example_bytes(entries(user) + entries(item) + entries(rating))
            == merged.SerializeToString(deterministic=True))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 881250949, 2**31, 2**63 - 1, -1,
                                   -2**63])
def test_an_int64_entry_is_the_protos_own(value):
    assert int64_entry("timestamp", value) == entries(_example(timestamp=_int64(value)))[0]


def test_a_long_example_gets_a_multi_byte_length():
    example = _example(title=_bytes(b"x" * 300), year=_int64(1996))
    assert (example_bytes(entries(example)[::-1])
            == example.SerializeToString(deterministic=True))
