"""The served items' order and the metadata constraints are checked against."""

import numpy as np

from components.example_gen.item_catalog import ItemTable
from components.serving.served_items import ServedItems


def test_known_items_then_cold_ones_with_their_metadata():
    table = ItemTable(["1", "2", "9"], ["A", "B", "New"], np.array([1990, 0, 1998]),
                      [["Drama"], ["Comedy", "Drama"], ["Sci-Fi"]])
    served = ServedItems.of(["2", "1", "gone"], ["9"], table)
    assert served.item_ids == ["2", "1", "gone", "9"]
    assert served.years.tolist() == [0, 1990, 0, 1998]
    assert served.genres == [["Comedy", "Drama"], ["Drama"], [], ["Sci-Fi"]]
    names = served.genre_names()
    assert names == ["Comedy", "Drama", "Sci-Fi"]
    assert served.genre_matrix(names).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]
