"""A tf.train.Example's deterministic bytes, assembled from its features' bytes.

ExampleGen writes, for every rating, the same user's and item's features again and again;
building and serializing a proto per rating was most of its time. A deterministic
serialization writes `Example.features` as the map's entries in key order, each entry on its
own, so the entries can be serialized once per user and item and then concatenated: the
bytes are those of `SerializeToString(deterministic=True)`, which ExampleGen's hash split
keys on.
"""

from typing import Iterable, List, Tuple

import tensorflow as tf

Entry = Tuple[str, bytes]  # a feature's name and its serialized `features` map entry

_LENGTH_DELIMITED_FIELD_1 = b"\x0a"  # Example.features, Features.feature, the entry's key, …
_ENTRY_VALUE = b"\x12"  # field 2 of a map entry: the Feature
_INT64_LIST = b"\x1a"  # Feature.int64_list (field 3)


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of an int64 (a negative one as its 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def entries(example: tf.train.Example) -> List[Entry]:
    """Each feature of an example as the bytes its Example's deterministic serialization
    holds for it."""
    return [(name, tf.train.Features(feature={name: feature}).SerializeToString(
        deterministic=True)) for name, feature in example.features.feature.items()]


def int64_entry(name: str, value: int) -> Entry:
    """The entry of a feature holding one int64, without building its proto."""
    values = _delimited(_LENGTH_DELIMITED_FIELD_1, _varint(value))  # Int64List.value, packed
    feature = _delimited(_INT64_LIST, values)
    entry = (_delimited(_LENGTH_DELIMITED_FIELD_1, name.encode())
             + _delimited(_ENTRY_VALUE, feature))
    return name, _delimited(_LENGTH_DELIMITED_FIELD_1, entry)


def example_bytes(features: Iterable[Entry]) -> bytes:
    """The deterministic bytes of the Example holding these features (names unique)."""
    return _delimited(_LENGTH_DELIMITED_FIELD_1,
                      b"".join(entry for _, entry in sorted(features)))
