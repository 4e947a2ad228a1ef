"""Columns: a batch as named numpy arrays, the part of a DataFrame that scoring reads.

A server scores batches of a few customers, where pandas' bookkeeping costs more than the model.
Scoring code reads `table[name]` as an array and `len(table)`, so it takes either a DataFrame
(training, files) or `Columns` (the service).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Columns:
    arrays: dict[str, np.ndarray]
    rows: int

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def columns(self) -> Collection[str]:
        return self.arrays.keys()

    def to_frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        return pd.DataFrame(self.arrays, index=index, copy=False)


Table = pd.DataFrame | Columns


def rows_of(table: Table, start: int, stop: int) -> Table:
    """Rows `start` to `stop` of `table`, a view where it can be."""
    if isinstance(table, pd.DataFrame):
        return table.iloc[start:stop]
    stop = min(stop, table.rows)
    return Columns({name: array[start:stop] for name, array in table.arrays.items()}, stop - start)


def object_array(values: list[Any]) -> np.ndarray:
    """A 1-d object array of `values` as they are (`np.array` would unpack nested sequences)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def as_frame(table: Table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else table.to_frame()
