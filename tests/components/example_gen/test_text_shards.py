"""A file's shards hold each of its data lines exactly once, whatever the shard size."""

import pytest

from components.example_gen import text_shards
from data import raw_format as R

LINES = ["user_id,item_id,rating,timestamp", "1,10,4,100", "", "22,3,5,101",
         "333,7,1,102", '"4",5,3,103', "5,5,5,104"]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("last_line_ended", [True, False])
def test_every_data_line_is_in_exactly_one_shard_whatever_their_size(
        tmp_path, ending, last_line_ended):
    path = tmp_path / "ratings.csv"
    path.write_bytes((ending.join(LINES) + (ending if last_line_ended else "")).encode())
    for shard_bytes in (1, 2, 3, 5, 8, 13, 1000):
        shards = text_shards.shards(str(path), shard_bytes)
        assert [shard.index for shard in shards] == list(range(len(shards)))
        assert {shard.count for shard in shards} == {len(shards)}
        read = [line for shard in shards for line in text_shards.lines(shard)]
        assert read == LINES[1:], shard_bytes


def test_a_file_with_only_its_header_has_one_empty_shard(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(LINES[0] + "\n")
    [shard] = text_shards.shards(str(path), 4)
    assert list(text_shards.lines(shard)) == []


def test_the_default_shard_size_makes_one_shard_of_a_small_file(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(LINES))
    assert len(text_shards.shards(str(path))) == 1


@pytest.mark.parametrize("line", [
    "196,242,3,881250949", " 196 ,242,3,881250949\r\n", "1,2\n", "", "\n", "   ",
    '1,"Toy Story (1995)",1995,Animation', '2,"Heat, the",1995,Action\r\n', "a,,b,",
])
def test_a_line_splits_as_the_csv_module_splits_it(line):
    import csv
    import io

    assert R.split_csv_line(line) == next(csv.reader(io.StringIO(line)), [])
