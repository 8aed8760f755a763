"""The items a pushed model serves, in its index order (the rated items of Transform's
vocabulary, then the catalog's items without ratings), with the metadata the user's
constraints are checked against: year and genres."""

import dataclasses
from typing import List, Sequence

import numpy as np

from components.example_gen.item_catalog import ItemTable


@dataclasses.dataclass
class ServedItems:
    item_ids: List[str]
    years: np.ndarray  # int64, 0 when unknown
    genres: List[List[str]]

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def of(cls, known_ids: Sequence[str], cold_ids: Sequence[str], table: ItemTable
           ) -> "ServedItems":
        """known_ids then cold_ids, with their metadata from table (an id table lacks, as an
        item of an older span whose newest item table dropped it: no year, no genres)."""
        row_of = {item_id: row for row, item_id in enumerate(table.item_ids)}
        ids = list(known_ids) + list(cold_ids)
        rows = [row_of.get(item_id) for item_id in ids]
        return cls(ids, np.array([0 if r is None else table.years[r] for r in rows], np.int64),
                   [[] if r is None else list(table.genres[r]) for r in rows])

    def genre_names(self) -> List[str]:
        return sorted({genre for genres in self.genres for genre in genres})

    def genre_matrix(self, names: Sequence[str]) -> np.ndarray:
        """[items, genres] 0/1 over names."""
        column = {name: number for number, name in enumerate(names)}
        matrix = np.zeros((len(self.item_ids), len(names)), np.float32)
        for row, genres in enumerate(self.genres):
            matrix[row, [column[g] for g in genres]] = 1.0
        return matrix
