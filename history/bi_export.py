"""The BI views (history/migrations/*/007_bi_views.sql) as files, partitioned by day.

`OUT/customers/day=YYYY-MM-DD/part-00000.parquet` holds the customers whose latest decision was
that day, `OUT/daily_kpis/day=.../` that day's KPIs: the layout Spark, pyarrow, DuckDB and BI
tools' folder connectors read as one table with a `day` column. The views are read in chunks,
so memory stays flat however long the history is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import pandas as pd
import sqlalchemy as sa

from churn.errors import UserError
from history.database import is_postgres

Format = Literal["parquet", "csv"]
VIEWS = {"customers": "bi_customers", "daily_kpis": "bi_daily_kpis"}
CHUNK_ROWS = 100_000
# Every file of a view gets the same types, even a day whose column is empty throughout.
BOOLEAN_COLUMNS = frozenset({"churn", "churned"})
TIME_COLUMNS = frozenset({"last_scored_at", "outcome_observed_at"})
INTEGER_COLUMNS = frozenset(
    {"decile", "decisions", "customers", "predicted_churners", "with_outcome"}
)
FLOAT_COLUMNS = frozenset({
    "churn_probability", "expected_value", "customer_value", "revenue_at_risk",
    "predicted_churn_rate", "realised_churn_rate",
})  # fmt: skip


@dataclass(frozen=True)
class Exported:
    folder: Path
    rows: dict[str, int]
    days: int


def export(
    engine: sa.Engine, out: Path, since: date, until: date, file_format: Format, overwrite: bool
) -> Exported:
    if since > until:
        raise UserError(f"--since ({since}) is after --until ({until}).")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{out} exists and is not empty; pass --overwrite to replace it.")
        shutil.rmtree(out)
    postgres = is_postgres(engine)
    params = {
        "since": since if postgres else since.isoformat(),
        "until": until if postgres else until.isoformat(),
    }
    rows: dict[str, int] = {}
    days: set[str] = set()
    with engine.connect() as connection:
        for name, view in VIEWS.items():
            sql = sa.text(
                f"SELECT * FROM {view} WHERE day >= :since AND day <= :until ORDER BY day"
            )
            rows[name] = 0
            chunks = pd.read_sql_query(sql, connection, params=params, chunksize=CHUNK_ROWS)
            for number, chunk in enumerate(chunks):
                rows[name] += len(chunk)
                days |= _write(_typed(chunk), out / name, number, file_format)
    return Exported(out, rows, len(days))


def _typed(chunk: pd.DataFrame) -> pd.DataFrame:
    """The same types from SQLite as from PostgreSQL: booleans, UTC times, days as text."""
    chunk["day"] = chunk["day"].astype(str).str.slice(0, 10)
    for column in chunk.columns.drop("day"):
        if column in BOOLEAN_COLUMNS:
            chunk[column] = chunk[column].astype("boolean")
        elif column in TIME_COLUMNS:
            chunk[column] = pd.to_datetime(chunk[column], utc=True, format="ISO8601")
        elif column in INTEGER_COLUMNS:
            chunk[column] = pd.to_numeric(chunk[column]).astype("Int64")
        elif column in FLOAT_COLUMNS:
            chunk[column] = pd.to_numeric(chunk[column]).astype("float64")
        else:
            chunk[column] = chunk[column].astype("string")
    return chunk


def _write(chunk: pd.DataFrame, folder: Path, number: int, file_format: Format) -> set[str]:
    for day, rows in chunk.groupby("day"):
        partition = folder / f"day={day}"
        partition.mkdir(parents=True, exist_ok=True)
        data = rows.drop(columns="day")
        path = partition / f"part-{number:05d}.{file_format}"
        if file_format == "parquet":
            data.to_parquet(path, index=False)
        else:
            data.to_csv(path, index=False)
    return {str(day) for day in chunk["day"].unique()}
