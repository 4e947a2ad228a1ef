"""Customer tables on disk: which format a file is, and writing one in its format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def write_table(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if is_parquet(out):
        table.to_parquet(out, index=False)
    else:
        # A blank cell, as the Telco export writes missing TotalCharges.
        table.to_csv(out, index=False, na_rep=" ")
