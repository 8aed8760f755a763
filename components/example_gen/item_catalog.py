"""The span's whole item table, written by ExampleGen beside the splits: items.csv's every
movie, rated or not, as one tf.Example of its raw item features.

The ratings' examples only hold the movies someone rated, so a movie added to items.csv
without ratings would never reach the model. The table sits in the Examples artifact's own
folder (`<uri>/items/`), not in a split, so StatisticsGen, ExampleValidator, Transform and the
Evaluator read the ratings as before; the Trainer reads it beside the splits it was given.
"""

import dataclasses
import os
from typing import Dict, List, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf

from components import features as F

CATALOG_FOLDER = "items"
_PREFIX = "items"
_SPEC = {
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    F.TITLE: tf.io.FixedLenFeature([], tf.string),
    F.YEAR: tf.io.VarLenFeature(tf.int64),
    F.GENRES: tf.io.VarLenFeature(tf.string),
}


def catalog_folder(examples_uri: str) -> str:
    return os.path.join(examples_uri, CATALOG_FOLDER)


def _serialized(item, to_example) -> bytes:
    return to_example(item).SerializeToString()


class WriteItemCatalog(beam.PTransform):
    """Parsed items (raw_format.Item) → one gzipped TFRecord file of their item features."""

    def __init__(self, examples_uri: str, to_example):
        super().__init__()
        self._prefix = os.path.join(catalog_folder(examples_uri), _PREFIX)
        self._to_example = to_example

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        return (items
                | "Serialize" >> beam.Map(_serialized, self._to_example)
                | "Write" >> beam.io.WriteToTFRecord(
                    self._prefix, file_name_suffix=".gz", num_shards=1,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP))


@dataclasses.dataclass
class ItemTable:
    """Raw item features by row; genres as one list per item."""

    item_ids: List[str]
    titles: List[str]
    years: np.ndarray  # int64, 0 when unknown
    genres: List[List[str]]

    def __len__(self) -> int:
        return len(self.item_ids)

    def raw_features(self, rows: Sequence[int]) -> Dict[str, tf.Tensor]:
        """The rows' raw item features as the Transform graph takes them ([n, 1] dense, sparse
        multivalent)."""
        rows = list(rows)
        genres = [self.genres[row] for row in rows]
        years = [[int(self.years[row])] if self.years[row] else [] for row in rows]
        return {
            F.ITEM_ID: tf.constant([[self.item_ids[row]] for row in rows], tf.string,
                                   shape=[len(rows), 1]),
            F.TITLE: tf.constant([[self.titles[row]] for row in rows], tf.string,
                                 shape=[len(rows), 1]),
            F.YEAR: tf.ragged.constant(years, tf.int64, row_splits_dtype=tf.int64).to_sparse(),
            F.GENRES: tf.ragged.constant(genres, tf.string,
                                         row_splits_dtype=tf.int64).to_sparse(),
        }


def read_item_catalog(examples_uris: Sequence[str]) -> ItemTable:
    """The items of every given Examples artifact, each item as the last artifact to list it
    has it (artifacts in span order: the newest span's table wins)."""
    rows: Dict[str, tuple] = {}
    for uri in examples_uris:
        files = tf.io.gfile.glob(os.path.join(catalog_folder(uri), "*.gz"))
        if not files:
            raise FileNotFoundError(
                f"{catalog_folder(uri)}: no item table; this Examples artifact was written by an "
                "older ExampleGen: rerun `recsys run` with the current code")
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096):
            parsed = tf.io.parse_example(record, _SPEC)
            years = tf.sparse.to_dense(parsed[F.YEAR]).numpy()
            genres = tf.RaggedTensor.from_sparse(parsed[F.GENRES]).to_list()
            for item_id, title, year, item_genres in zip(
                    parsed[F.ITEM_ID].numpy(), parsed[F.TITLE].numpy(), years, genres):
                rows[item_id.decode()] = (title.decode(), int(year[0]) if len(year) else 0,
                                          [g.decode() for g in item_genres])
    ids = sorted(rows)
    return ItemTable(item_ids=ids, titles=[rows[i][0] for i in ids],
                     years=np.array([rows[i][1] for i in ids], np.int64),
                     genres=[rows[i][2] for i in ids])


def examples_uri_of(split_pattern: str) -> str:
    """The Examples artifact's folder of a Trainer split pattern (`<uri>/Split-train/*`)."""
    return os.path.dirname(os.path.dirname(split_pattern))
