"""Reading the history back: one customer's scores over time, and daily counts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa

from history.customer_ids import CustomerIds
from history.database import is_postgres
from history.sinks import sqlite_time

CUSTOMER_HISTORY = """
SELECT scored_at, model_name, model_version, churn_probability, churn, risk_tier, decile,
       segment, action, expected_value, reasons, source, request_id, client, experiment,
       treatment, held_back_action
FROM predictions
WHERE customer_id = :customer_id AND NOT shadow {before}
ORDER BY scored_at DESC
LIMIT :limit
"""
SUMMARY = """
SELECT {day} AS day, model_version, risk_tier, segment, action, count(*) AS scored
FROM predictions
WHERE scored_at >= :since AND scored_at < :until AND NOT shadow
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1
"""
SUMMARY_DIMENSIONS = ("model_version", "risk_tier", "segment", "action")
DRIFT_COUNTS = """
SELECT feature, bin, sum(rows) AS rows
FROM drift_counts
WHERE model_version = :model_version AND bucket >= :since AND bucket < :until
GROUP BY feature, bin
"""
LATEST_REALISED = """
SELECT model_version, computed_at, customers, roc_auc, pr_auc, top_decile_lift, profit_per_customer
FROM realised_performance WHERE model_name = :model_name
"""


@dataclass(frozen=True)
class HistoryPage:
    customer_id: str
    scores: list[dict[str, Any]]
    # Pass as `before` for the next, older page; None on the last page.
    next_before: str | None


def customer_history(
    engine: sa.Engine,
    ids: CustomerIds,
    customer_id: str,
    limit: int = 50,
    before: datetime | None = None,
    stored: bool = False,
) -> HistoryPage:
    """A customer's scores, newest first: `limit` of them, older than `before` if given.
    `stored`: `customer_id` is already the id as the history stores it (a digest, with hashed
    ids), as the history's own pages link to it."""
    as_stored = customer_id if stored else ids.stored(customer_id)
    params: dict[str, Any] = {"customer_id": as_stored, "limit": limit + 1}
    if before is not None:
        params["before"] = bound(engine, before)
    sql = CUSTOMER_HISTORY.format(before="" if before is None else "AND scored_at < :before")
    with engine.connect() as connection:
        rows = connection.execute(sa.text(sql), params).mappings().all()
    scores = [_score(row) for row in rows[:limit]]
    more = len(rows) > limit
    return HistoryPage(customer_id, scores, scores[-1]["scored_at"] if more else None)


def summary(engine: sa.Engine, since: date, until: date) -> list[dict[str, Any]]:
    """Per day from `since` up to but not including `until`: how many customers were scored,
    by model version, risk tier, segment and action."""
    day = (
        "to_char(scored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        if is_postgres(engine)
        else "substr(scored_at, 1, 10)"
    )
    params = {
        "since": bound(engine, datetime.combine(since, time(), UTC)),
        "until": bound(engine, datetime.combine(until, time(), UTC)),
    }
    with engine.connect() as connection:
        rows = connection.execute(sa.text(SUMMARY.format(day=day)), params).mappings().all()
    days: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    totals: Counter[str] = Counter()
    for row in rows:
        totals[row["day"]] += row["scored"]
        for dimension in SUMMARY_DIMENSIONS:
            days[row["day"]][dimension][str(row[dimension])] += row["scored"]
    return [
        {
            "day": day_name,
            "scored": totals[day_name],
            **{f"by_{dimension}": dict(counts[dimension]) for dimension in SUMMARY_DIMENSIONS},
        }
        for day_name, counts in days.items()
    ]


def within_range(moment: datetime) -> bool:
    """Whether `moment` (UTC when it names no zone) is a time the history can compare: one
    whose UTC time falls in the years 1 to 9999."""
    if moment.tzinfo is None:
        return True
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def bound(engine: sa.Engine, moment: datetime) -> datetime | str:
    """`moment` as the history's time columns compare (a naive time is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment if is_postgres(engine) else sqlite_time(moment.astimezone(UTC))


def _score(row: sa.RowMapping) -> dict[str, Any]:
    scored_at = row["scored_at"]
    reasons = row["reasons"]
    return {
        "scored_at": scored_at
        if isinstance(scored_at, str)
        else sqlite_time(scored_at.astimezone(UTC)),
        "model_name": row["model_name"],
        "model_version": row["model_version"],
        "churn_probability": row["churn_probability"],
        "churn": bool(row["churn"]),
        "risk_tier": row["risk_tier"],
        "decile": row["decile"],
        "segment": row["segment"],
        "action": row["action"],
        "expected_value": row["expected_value"],
        "reasons": json.loads(reasons) if isinstance(reasons, str) else reasons,
        "source": row["source"],
        "request_id": row["request_id"],
        "client": row["client"],
        "experiment": row["experiment"],
        "treatment": row["treatment"],
        "held_back_action": row["held_back_action"],
    }


def drift_counts(
    engine: sa.Engine, model_version: str, since: datetime, until: datetime
) -> dict[str, dict[int, int]]:
    """Rows per reference bin of each feature (and `__prediction__`), recorded by
    `model_version` from `since` up to `until`."""
    params = {
        "model_version": model_version,
        "since": bound(engine, since),
        "until": bound(engine, until),
    }
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    with engine.connect() as connection:
        for feature, bin_, rows in connection.execute(sa.text(DRIFT_COUNTS), params):
            counts[feature][int(bin_)] = int(rows)
    return dict(counts)


def realised_performance(engine: sa.Engine, model_name: str) -> list[dict[str, Any]]:
    """Per version, the realised figures `python -m training performance` stored last."""
    with engine.connect() as connection:
        rows = connection.execute(sa.text(LATEST_REALISED), {"model_name": model_name})
        return [dict(row) for row in rows.mappings()]


LATEST_SCORES = """
WITH ranked AS (
    SELECT customer_id, scored_at, risk_tier, churn_probability, churn, action,
           customer_value, model_version,
           row_number() OVER (PARTITION BY customer_id ORDER BY scored_at DESC) AS newest
    FROM predictions
    WHERE customer_id IS NOT NULL AND scored_at >= :lookback AND NOT shadow
)
"""
NEWLY_HIGH = (
    LATEST_SCORES
    + """
SELECT now.customer_id, now.scored_at, now.churn_probability, now.action, now.customer_value,
       now.model_version, before.risk_tier AS tier_before
FROM ranked now JOIN ranked before ON before.customer_id = now.customer_id AND before.newest = 2
WHERE now.newest = 1 AND now.scored_at >= :since AND now.risk_tier = 'high'
  AND before.risk_tier <> 'high'
ORDER BY now.churn_probability DESC
LIMIT :limit
"""
)
AT_RISK = (
    LATEST_SCORES
    + """
SELECT count(*) AS customers, sum(CASE WHEN churn THEN 1 ELSE 0 END) AS churners,
       sum(CASE WHEN churn THEN coalesce(customer_value, 0) ELSE 0 END) AS revenue_at_risk
FROM ranked WHERE newest = 1 AND scored_at >= :since
"""
)


def newly_high(
    engine: sa.Engine, since: datetime, lookback: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """Customers whose newest score, from `since`, is high risk and whose score before it (from
    `lookback` on) was not: the ones to call first."""
    params = {
        "since": bound(engine, since),
        "lookback": bound(engine, lookback),
        "limit": limit,
    }
    with engine.connect() as connection:
        rows = connection.execute(sa.text(NEWLY_HIGH), params).mappings().all()
    return [{**row, "scored_at": _text_time(row["scored_at"])} for row in rows]


def at_risk(engine: sa.Engine, since: datetime) -> dict[str, float]:
    """Over customers scored from `since`, by their newest score: how many, how many are
    predicted to churn, and what those are worth (revenue at risk)."""
    params = {"since": bound(engine, since), "lookback": bound(engine, since)}
    with engine.connect() as connection:
        row = connection.execute(sa.text(AT_RISK), params).mappings().one()
    return {
        "customers": int(row["customers"] or 0),
        "churners": int(row["churners"] or 0),
        "revenue_at_risk": float(row["revenue_at_risk"] or 0.0),
    }


def _text_time(value: Any) -> str:
    return value if isinstance(value, str) else sqlite_time(value.astimezone(UTC))


def stream_offsets(engine: sa.Engine, consumer_group: str) -> dict[tuple[str, int], int]:
    """Where `consumer_group` has got to: the next offset to read, by (topic, partition)."""
    query = sa.text(
        "SELECT topic, partition, next_offset FROM stream_offsets WHERE consumer_group = :group"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"group": consumer_group})
        return {(row.topic, int(row.partition)): int(row.next_offset) for row in rows}
