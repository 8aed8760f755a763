"""Every rating becomes exactly one example: ExampleGen counts what it wrote against the
ratings it read before anything downstream sees the examples.

A Beam runner can lose elements without failing: the DirectRunner in multi-processing mode
wrote 7,648,954 examples for 10,000,054 ratings, and the run trained, blessed and pushed a model
on 76% of the data. The count is taken from the files themselves, not from the runner.
"""

import gzip
import struct
from typing import Dict, Sequence

import tensorflow as tf

_CHUNK_BYTES = 1 << 24


class ExamplesLostError(RuntimeError):
    """ExampleGen wrote fewer (or more) examples than the ratings file holds."""

    def __init__(self, path: str, ratings: int, examples: int):
        self.path, self.ratings, self.examples = path, ratings, examples
        lost = ratings - examples
        what = (f"the Beam runner lost {lost:,} of them" if lost > 0
                else f"{-lost:,} more than it read")
        super().__init__(
            f"{path}: {ratings:,} ratings but ExampleGen wrote {examples:,} examples; "
            f"{what} (rule: every rating becomes exactly one example). Nothing was trained or "
            "pushed. The DirectRunner in multi_processing mode drops elements at ~10M ratings: "
            "run with --direct_running_mode=in_memory, or on Flink, Spark or Dataflow")

    def __reduce__(self):
        return ExamplesLostError, (self.path, self.ratings, self.examples)


def count_rows(path: str) -> int:
    """Data rows of a CSV file as ExampleGen reads it: lines after the header that hold
    something other than whitespace."""
    rows, tail = 0, b""
    with tf.io.gfile.GFile(path, "rb") as handle:
        handle.readline()
        while chunk := handle.read(_CHUNK_BYTES):
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            rows += sum(1 for line in lines if line.strip())
    return rows + bool(tail.strip())


def _records_in(path: str) -> int:
    """Records of one gzipped TFRecord file, counted from their length headers (8-byte length,
    4-byte CRC, data, 4-byte CRC): several times faster than tf.data's count."""
    count, buffer = 0, b""
    with tf.io.gfile.GFile(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            buffer += chunk
            position = 0
            while position + 8 <= len(buffer):
                end = position + 16 + struct.unpack_from("<Q", buffer, position)[0]
                if end > len(buffer):
                    break
                position, count = end, count + 1
            buffer = buffer[position:]
    if buffer:
        raise ValueError(f"{path}: ends inside a record")
    return count


def count_examples(split_uri: str) -> int:
    """Records in a split's gzipped TFRecord files, as the Trainer and Evaluator read them."""
    return sum(_records_in(path) for path in tf.io.gfile.glob(f"{split_uri}/*.gz"))


def check_every_rating_written(split_uris_by_ratings_file: Dict[str, Sequence[str]]) -> None:
    """Raises for the first ratings file whose examples, over the splits it was written to,
    are not as many as its rows."""
    for path, split_uris in split_uris_by_ratings_file.items():
        ratings = count_rows(path)
        examples = sum(count_examples(uri) for uri in split_uris)
        if examples != ratings:
            raise ExamplesLostError(path, ratings, examples)
