"""A damaged ML Metadata database is named, with what to do, before anything reads it."""

import sqlite3

import pytest

from pipeline.config import load_config
from pipeline.results import MetadataDamagedError, check_metadata, open_store


def test_a_damaged_database_is_named_and_a_sound_one_opens(tmp_path):
    config = load_config(output_dir=str(tmp_path))
    tmp_path.joinpath("metadata.sqlite").write_bytes(b"\0garbage" * 512)
    with pytest.raises(MetadataDamagedError, match="is damaged .file is not a database.") as error:
        open_store(config)
    assert str(error.value).startswith(config.metadata_path)
    tmp_path.joinpath("metadata.sqlite").unlink()
    sqlite3.connect(config.metadata_path).close()
    check_metadata(config)  # an empty database is sound
    open_store(config).get_artifacts()
