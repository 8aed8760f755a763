"""A text file as byte ranges of whole lines: the unit of work of ExampleGen's join.

A shard is read in one call by whichever Beam worker it lands on, so a worker pays Beam's
per-element cost once per shard, not once per line. A shard holds the lines that start inside
its range: it skips the line it starts in the middle of (the shard before reads it whole) and
finishes the line it ends in the middle of. The header line belongs to no shard.
"""

import dataclasses
from typing import Iterator, List, Optional

import tensorflow as tf

SHARD_BYTES = 8 << 20  # MovieLens-1M's ratings are 3 shards, -10M's 30 (its file is ~250 MB)
_READ_BYTES = 1 << 16  # past a shard's end, looking for the end of its last line


@dataclasses.dataclass(frozen=True)
class Shard:
    path: str
    index: int
    count: int  # shards of the file
    start: int  # byte offsets, [start, end)
    end: int


def shards(path: str, shard_bytes: Optional[int] = None) -> List[Shard]:
    """The file's data lines (after the header) in shards of about shard_bytes (default
    SHARD_BYTES); at least one, so that a file with no data still has a shard to write its
    empty outputs."""
    shard_bytes = shard_bytes or SHARD_BYTES
    with tf.io.gfile.GFile(path, "rb") as handle:
        first = len(handle.readline())
    size = tf.io.gfile.stat(path).length
    starts = list(range(first, size, shard_bytes)) or [first]
    return [Shard(path, index, len(starts), start, min(start + shard_bytes, size))
            for index, start in enumerate(starts)]


def lines(shard: Shard) -> Iterator[str]:
    """The lines that start in the shard's range, decoded, without their line ends ('\\n',
    '\\r\\n'): as Beam's ReadFromText gives them."""
    with tf.io.gfile.GFile(shard.path, "rb") as handle:
        begins_a_line = True
        if shard.start > 0:
            handle.seek(shard.start - 1)
            begins_a_line = handle.read(1) == b"\n"
        data = handle.read(shard.end - shard.start)
        while data and not data.endswith(b"\n"):
            more = handle.read(_READ_BYTES)
            if not more:
                break
            cut = more.find(b"\n")
            data += more if cut < 0 else more[:cut + 1]
            if cut >= 0:
                break
    rows = data.split(b"\n")
    if not begins_a_line:
        rows = rows[1:]
    if rows and not rows[-1]:
        rows.pop()
    for row in rows:
        yield row.rstrip(b"\r").decode("utf-8")
