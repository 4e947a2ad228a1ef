"""What a retention experiment measured: the treated against the control group, per action and
segment, once outcomes are in.

Each customer with an outcome is judged by the newest decision the experiment recorded for it
in the `window_days` before the outcome was observed (its latest outcome, if it has several).
The action compared is the one recommended: what a treated customer was offered, and what a
held-back customer would have been. Uplift is the control group's churn rate minus the treated
group's, with Newcombe's hybrid-score 95% interval (sound with few customers and with rates
near 0 or 1, where the plain normal interval is not). A verdict (keeps customers, harmful)
needs the interval widened for every row the report judges at once (Bonferroni): a dozen
segments at 95% each would otherwise show one effect by chance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from churn.errors import UserError
from history.reader import bound

ALL_SEGMENTS = "all"
Z_95 = 1.959963984540054
MATCHED = """
SELECT customer_id, observed_at, churned, scored_at, segment, action, treatment,
       held_back_action, customer_value
FROM (
    SELECT o.customer_id, o.observed_at, o.churned, p.scored_at, p.segment, p.action,
           p.treatment, p.held_back_action, p.customer_value,
           ROW_NUMBER() OVER (
               PARTITION BY o.customer_id ORDER BY o.observed_at DESC, p.scored_at DESC
           ) AS newest
    FROM outcomes o
    JOIN predictions p ON p.customer_id = o.customer_id
    WHERE p.experiment = :experiment AND NOT p.shadow AND p.scored_at <= o.observed_at
      AND p.scored_at >= :since AND p.scored_at < :until
) matched
WHERE newest = 1
"""
ASSIGNED = """
SELECT treatment, COUNT(DISTINCT customer_id) AS customers FROM predictions
WHERE experiment = :experiment AND NOT shadow AND scored_at >= :since AND scored_at < :until
GROUP BY treatment
"""
UNASSIGNED_OUTCOMES = """
SELECT COUNT(DISTINCT o.customer_id) FROM outcomes o
WHERE o.observed_at >= :since AND NOT EXISTS (
    SELECT 1 FROM predictions p WHERE p.customer_id = o.customer_id AND p.experiment = :experiment
)
"""
EXPERIMENTS = "SELECT DISTINCT experiment FROM predictions WHERE experiment IS NOT NULL"

Verdict = Literal["keeps customers", "harmful", "no clear effect", "too few outcomes"]


@dataclass(frozen=True)
class Uplift:
    action: str
    segment: str  # ALL_SEGMENTS for every segment together
    treated: int
    control: int
    # None when a group has no outcome.
    treated_churn_rate: float | None
    control_churn_rate: float | None
    # Control churn rate minus treated churn rate, and its 95% interval.
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    kept_per_1000_treated: float | None
    # Per treated customer: uplift x its mean customer value - the action's cost; None when
    # the uplift or the action's cost is not known.
    incremental_profit_per_treated: float | None
    incremental_profit: float | None
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExperimentResult:
    experiment: str
    since: datetime
    until: datetime
    # Distinct customers the experiment recorded, by group, and those with an outcome.
    assigned: dict[str, int]
    with_outcome: int
    # Customers with an outcome in the window whom the experiment never assigned: left out,
    # and said so.
    unassigned_outcomes: int
    uplifts: list[Uplift]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def measure(
    engine: sa.Engine,
    experiment: str,
    since: datetime,
    until: datetime,
    window_days: int,
    costs: Mapping[str, float],
    min_outcomes: int,
) -> ExperimentResult:
    """The experiment's uplift per action and segment; UserError when it has no customers or
    no outcomes yet."""
    params = {
        "experiment": experiment,
        "since": bound(engine, since),
        "until": bound(engine, until),
    }
    with engine.connect() as connection:
        assigned = {
            str(row.treatment): int(row.customers)
            for row in connection.execute(sa.text(ASSIGNED), params)
        }
        if not assigned:
            known = experiment_names(engine)
            raise UserError(
                f"No decision of experiment {experiment!r} was recorded from {since:%Y-%m-%d} to "
                f"{until:%Y-%m-%d}; experiments recorded: {', '.join(known) or 'none'}."
            )
        matched = pd.read_sql_query(sa.text(MATCHED), connection, params=params)
        unassigned = int(connection.execute(sa.text(UNASSIGNED_OUTCOMES), params).scalar_one())
    matched = _in_window(matched, window_days)
    if matched.empty:
        groups = ", ".join(f"{count:,} {group}" for group, count in sorted(assigned.items()))
        raise UserError(
            f"Experiment {experiment!r} has customers ({groups}) but no outcome observed within "
            f"{window_days} days after their decisions yet: load outcomes with "
            "`python -m training outcomes`."
        )
    return ExperimentResult(
        experiment, since, until, assigned, len(matched), unassigned,
        uplift_table(matched, costs, min_outcomes),
    )  # fmt: skip


def experiment_names(engine: sa.Engine) -> list[str]:
    """Every experiment the history has decisions of."""
    with engine.connect() as connection:
        return sorted(str(row[0]) for row in connection.execute(sa.text(EXPERIMENTS)))


def uplift_table(
    matched: pd.DataFrame, costs: Mapping[str, float], min_outcomes: int
) -> list[Uplift]:
    """Per recommended action: every segment together, then each segment."""
    frame = matched.assign(
        recommended=matched["held_back_action"].fillna(matched["action"]),
        churned=matched["churned"].astype(bool),
        customer_value=pd.to_numeric(matched["customer_value"], errors="coerce"),
    )
    cells = []
    for action, rows in sorted(frame.groupby("recommended"), key=lambda item: str(item[0])):
        cells.append((str(action), ALL_SEGMENTS, rows))
        for segment, in_segment in sorted(rows.groupby("segment"), key=lambda i: str(i[0])):
            cells.append((str(action), str(segment), in_segment))
    judged = sum(min(_group_sizes(rows)) >= min_outcomes for _, _, rows in cells)
    z_verdict = verdict_z(judged)
    return [
        _uplift(action, segment, rows, costs.get(action), min_outcomes, z_verdict)
        for action, segment, rows in cells
    ]


def verdict_z(comparisons: int) -> float:
    """The normal quantile of a verdict's interval: 95% for the whole report together
    (Bonferroni), so among a dozen segments one does not look helped, or harmed, by chance."""
    return NormalDist().inv_cdf(1 - 0.05 / (2 * max(1, comparisons)))


def _group_sizes(rows: pd.DataFrame) -> tuple[int, int]:
    treatment = rows["treatment"]
    return int((treatment == "treated").sum()), int((treatment == "control").sum())


def _uplift(
    action: str,
    segment: str,
    rows: pd.DataFrame,
    cost: float | None,
    min_outcomes: int,
    z_verdict: float,
) -> Uplift:
    treated = rows[rows["treatment"] == "treated"]
    control = rows[rows["treatment"] == "control"]
    churned_t, n_t = int(treated["churned"].sum()), len(treated)
    churned_c, n_c = int(control["churned"].sum()), len(control)
    if not (n_t and n_c):
        rate_t = churned_t / n_t if n_t else None
        rate_c = churned_c / n_c if n_c else None
        return Uplift(action, segment, n_t, n_c, rate_t, rate_c, None, None, None, None, None,
                      None, "too few outcomes")  # fmt: skip
    rate_t, rate_c = churned_t / n_t, churned_c / n_c
    low, high = difference_interval(churned_c, n_c, churned_t, n_t)
    uplift = rate_c - rate_t
    value = float(treated["customer_value"].mean())
    per_treated = None
    if cost is not None and not math.isnan(value):
        per_treated = uplift * value - cost
    return Uplift(
        action=action,
        segment=segment,
        treated=n_t,
        control=n_c,
        treated_churn_rate=rate_t,
        control_churn_rate=rate_c,
        uplift=uplift,
        uplift_low=low,
        uplift_high=high,
        kept_per_1000_treated=1000 * uplift,
        incremental_profit_per_treated=per_treated,
        incremental_profit=None if per_treated is None else per_treated * n_t,
        verdict=_verdict(
            difference_interval(churned_c, n_c, churned_t, n_t, z_verdict), n_t, n_c, min_outcomes
        ),
    )


def difference_interval(
    events_1: int, n_1: int, events_2: int, n_2: int, z: float = Z_95
) -> tuple[float, float]:
    """Newcombe's hybrid-score interval for rate 1 minus rate 2 (his method 10)."""
    p_1, p_2 = events_1 / n_1, events_2 / n_2
    low_1, high_1 = wilson_interval(events_1, n_1, z)
    low_2, high_2 = wilson_interval(events_2, n_2, z)
    difference = p_1 - p_2
    return (
        difference - math.hypot(p_1 - low_1, high_2 - p_2),
        difference + math.hypot(high_1 - p_1, p_2 - low_2),
    )


def wilson_interval(events: int, n: int, z: float = Z_95) -> tuple[float, float]:
    p = events / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def _verdict(interval: tuple[float, float], n_t: int, n_c: int, min_outcomes: int) -> Verdict:
    low, high = interval
    if min(n_t, n_c) < min_outcomes:
        return "too few outcomes"
    if low > 0:
        return "keeps customers"
    if high < 0:
        return "harmful"
    return "no clear effect"


def _in_window(matched: pd.DataFrame, window_days: int) -> pd.DataFrame:
    for column in ("observed_at", "scored_at"):
        matched[column] = pd.to_datetime(matched[column], utc=True, format="ISO8601")
    in_window = matched["scored_at"] >= matched["observed_at"] - timedelta(days=window_days)
    return matched[in_window].reset_index(drop=True)
