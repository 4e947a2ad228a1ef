"""Realistic request bodies: customer records drawn from the demo table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_TABLE = Path("data/customers.csv")
LABEL_COLUMN = "Churn"


def load_records(path: Path | None = None, limit: int = 5000) -> list[dict[str, Any]]:
    import pandas as pd

    table = pd.read_csv(
        path or Path(os.environ.get("LOADTEST_DATA", DEFAULT_TABLE)),
        nrows=limit,
        na_values=[" "],  # Telco-style blank TotalCharges: sent as null, which both servers accept
    )
    table = table.drop(columns=[LABEL_COLUMN], errors="ignore")
    records: list[dict[str, Any]] = json.loads(table.to_json(orient="records"))
    return records
