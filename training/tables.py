"""Write tables in the format their file name asks for."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_table(table: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        table.to_parquet(out, index=False)
    else:
        # A blank cell, as the Telco export writes missing TotalCharges.
        table.to_csv(out, index=False, na_rep=" ")
