"""Champion and challenger side by side before any outcome is known: for the customers both
scored in the same request, how often they agree, by segment.

Rows are paired by request id and customer id, so customers need ids. The expected profit per
customer is each version's own expected value of the action it recommends; the difference is
the challenger's minus the champion's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from history.reader import bound

PAIRS = """
SELECT c.model_version AS champion_version, r.model_version AS challenger_version,
       c.segment AS segment,
       c.risk_tier AS champion_tier, r.risk_tier AS challenger_tier,
       c.action AS champion_action, r.action AS challenger_action,
       c.churn_probability AS champion_probability,
       r.churn_probability AS challenger_probability,
       c.expected_value AS champion_value, r.expected_value AS challenger_value
FROM predictions c
JOIN predictions r ON r.customer_id = c.customer_id AND r.request_id = c.request_id
WHERE c.role = 'champion' AND r.role = 'challenger' AND c.customer_id IS NOT NULL
  AND c.scored_at >= :since AND c.scored_at < :until
"""
ALL_SEGMENTS = "all"


@dataclass(frozen=True)
class Agreement:
    champion_version: str
    challenger_version: str
    segment: str
    customers: int
    same_tier: float
    same_action: float
    # Pearson's, of the two churn probabilities; None when either is constant.
    probability_correlation: float | None
    expected_profit_difference_per_customer: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(engine: sa.Engine, since: datetime, until: datetime) -> list[Agreement]:
    """Per pair of versions, every segment together ("all") and then each segment."""
    params = {"since": bound(engine, since), "until": bound(engine, until)}
    with engine.connect() as connection:
        pairs = pd.read_sql_query(sa.text(PAIRS), connection, params=params)
    return agreement_table(pairs)


def agreement_table(pairs: pd.DataFrame) -> list[Agreement]:
    """The table for `pairs`, one row per customer with PAIRS's columns."""
    table = []
    for (champion, challenger), versions in pairs.groupby(
        ["champion_version", "challenger_version"], sort=True
    ):
        table.append(_agreement(str(champion), str(challenger), ALL_SEGMENTS, versions))
        for segment, pairs_of in versions.fillna({"segment": "none"}).groupby("segment"):
            table.append(_agreement(str(champion), str(challenger), str(segment), pairs_of))
    return table


def _agreement(champion: str, challenger: str, segment: str, pairs: pd.DataFrame) -> Agreement:
    correlation = pairs["champion_probability"].corr(pairs["challenger_probability"])
    difference = (pairs["challenger_value"] - pairs["champion_value"]).mean()
    return Agreement(
        champion,
        challenger,
        segment,
        len(pairs),
        float((pairs["champion_tier"] == pairs["challenger_tier"]).mean()),
        float((pairs["champion_action"] == pairs["challenger_action"]).mean()),
        None if math.isnan(correlation) else round(float(correlation), 4),
        round(float(difference), 2) + 0.0,  # never -0.0
    )
