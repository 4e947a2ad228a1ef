"""What the prediction history holds of one fault's traffic, read from PostgreSQL directly."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class HistoryRows:
    found: int  # distinct customers recorded
    twice: int  # rows beyond the first for a customer


def history_rows(database: str, tag: str) -> HistoryRows:
    with psycopg.connect(database, connect_timeout=5) as connection:
        row = connection.execute(
            "SELECT count(DISTINCT customer_id), count(*) - count(DISTINCT customer_id) "
            "FROM predictions WHERE customer_id LIKE %s",
            (f"{tag}-%",),
        ).fetchone()
    assert row is not None
    return HistoryRows(found=int(row[0]), twice=int(row[1]))
