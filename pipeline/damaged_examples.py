"""ExampleGen's examples that no longer read (a shard truncated or corrupted after it was
written): found when a run fails on them, and set aside so that the rerun writes them anew
from the span's raw files.

Set aside is ML Metadata's own mark: the artifact's state leaves LIVE, so TFX's cache no longer
offers the execution that wrote it and the resolvers no longer pick it; the span counts as
missed and is caught up like a span that arrived between runs (pipeline/local_runner.py).
"""

import dataclasses
import os
import re
from typing import List

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import PipelineConfig
from pipeline.pipeline import EXAMPLE_GEN_ID
from pipeline.results import open_store
from pipeline.validated_spans import span_of

DAMAGED = "damaged"  # the custom property naming the shard and what is wrong with it


@dataclasses.dataclass(frozen=True)
class DamagedExamples:
    span: int
    shard: str
    why: str


def is_data_loss(error: BaseException) -> bool:
    """A failed read of a damaged TFRecord, raised as TF's error or wrapped by Beam."""
    while error is not None:
        if isinstance(error, tf.errors.DataLossError) or "DataLossError" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _first_damage(uri: str):
    for root, _, files in sorted(os.walk(uri)):
        for name in sorted(files):
            if not name.startswith("data_tfrecord"):
                continue
            path = os.path.join(root, name)
            compression = "GZIP" if name.endswith(".gz") else ""
            try:
                for _ in tf.data.TFRecordDataset(path, compression_type=compression):
                    pass
            except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as error:
                # TF's message without the op's name and device around it
                message = re.sub(r"\{\{.*?\}\}\s*", "", error.message).split(" [Op:")[0]
                return path, message.strip().replace("' failed", " failed")
    return None


def set_aside_damaged_examples(config: PipelineConfig) -> List[DamagedExamples]:
    """Reads every live shard ExampleGen wrote; sets aside each artifact with one that fails."""
    store = open_store(config)
    found, changed = [], []
    for artifact in store.get_artifacts_by_type("Examples"):
        if (artifact.state != metadata_store_pb2.Artifact.LIVE
                or f"{os.sep}{EXAMPLE_GEN_ID}{os.sep}" not in artifact.uri):
            continue
        damage = _first_damage(artifact.uri)
        if damage is None:
            continue
        artifact.state = metadata_store_pb2.Artifact.MARKED_FOR_DELETION
        artifact.custom_properties[DAMAGED].string_value = f"{damage[0]}: {damage[1]}"
        changed.append(artifact)
        found.append(DamagedExamples(span_of(artifact), *damage))
    if changed:
        store.put_artifacts(changed)
    return found
