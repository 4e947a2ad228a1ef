"""Loading what really happened (did each customer churn, and when was it seen) into the history.

Every row is checked on its own: a bad row is reported with its row number (1 is the first row
after the header) and the column at fault, and every good row is loaded. Loading the same
customer and time again replaces the earlier outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churn.errors import UserError
from history.database import is_postgres
from history.sinks import sqlite_time
from history.store import History
from scoring.tables import is_parquet
from training.data import NEGATIVE_LABELS, POSITIVE_LABELS, Source, read_table

UPSERT = """
INSERT INTO outcomes (customer_id, observed_at, churned, loaded_at)
VALUES (:customer_id, :observed_at, :churned, :loaded_at)
ON CONFLICT (customer_id, observed_at)
DO UPDATE SET churned = excluded.churned, loaded_at = excluded.loaded_at
"""


@dataclass(frozen=True)
class BadRow:
    row: int
    message: str


@dataclass(frozen=True)
class Outcomes:
    # customer_id (as given), observed_at (UTC), churned (bool)
    table: pd.DataFrame
    bad_rows: list[BadRow]


def read_outcomes(
    source: Source,
    id_column: str,
    target: str,
    observed_at: str | None = None,
    loaded_at: datetime | None = None,
) -> Outcomes:
    """The good outcomes in `source` and a message for each bad row. Without an `observed_at`
    column every outcome is observed at `loaded_at` (default: now)."""
    table = _read(source, id_column)
    for role, column in (("id", id_column), ("target", target), ("observed-at", observed_at)):
        if column is not None and column not in table.columns:
            raise UserError(
                f"The {role} column {column!r} is not in {source.describe()}. "
                f"Columns present: {', '.join(map(str, table.columns))}."
            )
    now = loaded_at or datetime.now(UTC)
    ids = table[id_column].astype("string").str.strip()
    labels = table[target].astype("string").str.strip().str.lower()
    churned = labels.isin(POSITIVE_LABELS)
    if observed_at is None:
        times = pd.Series(pd.Timestamp(now), index=table.index)
    else:
        times = pd.to_datetime(table[observed_at], errors="coerce", utc=True, format="mixed")
    problems = pd.Series([None] * len(table), index=table.index, dtype=object)

    def flag(bad: pd.Series, message: Any) -> None:
        fresh = bad & problems.isna()
        problems[fresh] = [message(value) for value in table.loc[fresh].itertuples(index=False)]

    flag(ids.isna() | (ids == ""), lambda row: f"{id_column}: the customer id is empty")
    position = {name: index for index, name in enumerate(table.columns)}
    flag(
        ~(churned | labels.isin(NEGATIVE_LABELS)),
        lambda row: f"{target}: {row[position[target]]!r} is not yes/no, true/false, 1/0 or y/n",
    )
    if observed_at is not None:
        flag(
            times.isna(),
            lambda row: f"{observed_at}: {row[position[observed_at]]!r} is not a date and time",
        )
    good = problems.isna()
    duplicated = good & pd.DataFrame({"id": ids, "at": times}).duplicated(keep="first")
    flag(duplicated, lambda row: "the same customer and time as an earlier row")
    good = problems.isna()
    outcomes = pd.DataFrame(
        {"customer_id": ids[good], "observed_at": times[good], "churned": churned[good]}
    ).reset_index(drop=True)
    bad = [
        BadRow(row, str(message))
        for row, message in enumerate(problems.tolist(), start=1)
        if message is not None
    ]
    return Outcomes(outcomes, bad)


def _read(source: Source, id_column: str) -> pd.DataFrame:
    path = Path(source.location)
    if source.is_sql or is_parquet(path) or not path.is_file():
        return read_table(source)
    try:
        # Text, so ids keep their leading zeros, as /predict received them.
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"Could not parse {path}: {str(exc).splitlines()[0]}") from exc


def store_outcomes(history: History, outcomes: pd.DataFrame) -> int:
    """Insert or replace `outcomes` in the history; how many rows were stored."""
    postgres = is_postgres(history.engine)
    loaded_at = datetime.now(UTC)
    rows = [
        {
            "customer_id": history.ids.stored(customer_id),
            "observed_at": moment.to_pydatetime() if postgres else sqlite_time(moment),
            "churned": bool(churned),
            "loaded_at": loaded_at if postgres else sqlite_time(loaded_at),
        }
        for customer_id, moment, churned in outcomes.itertuples(index=False)
    ]
    if rows:
        with history.engine.begin() as connection:
            connection.execute(sa.text(UPSERT), rows)
    return len(rows)
