"""How each model version really performed: its predictions matched with the outcomes that
followed them.

An outcome is matched, for each model version, with the newest prediction that version made for
the customer in the `window_days` before the outcome was observed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.playbook import NO_ACTION
from history.store import History
from training.evaluate import campaign_profit, top_decile_lift
from training.settings import Economics

MATCHED = """
SELECT model_version, customer_id, observed_at, churned, scored_at, churn_probability,
       churn, action
FROM (
    SELECT p.model_version, o.customer_id, o.observed_at, o.churned, p.scored_at,
           p.churn_probability, p.churn, p.action,
           ROW_NUMBER() OVER (
               PARTITION BY p.model_version, o.customer_id, o.observed_at
               ORDER BY p.scored_at DESC
           ) AS newest
    FROM outcomes o
    JOIN predictions p ON p.customer_id = o.customer_id
    WHERE p.model_name = :model_name AND p.scored_at <= o.observed_at
) matched
WHERE newest = 1
"""


@dataclass(frozen=True)
class CalibrationBin:
    decile: int  # 1 holds the highest predicted probabilities
    customers: int
    predicted_rate: float
    observed_rate: float


@dataclass(frozen=True)
class Realised:
    model_version: str
    customers: int
    churn_rate: float
    # None when the outcomes hold one class only: the ranking cannot be judged.
    roc_auc: float | None
    pr_auc: float | None
    precision: float
    recall: float
    top_decile_lift: float
    targeted_share: float
    profit_per_customer: float
    calibration: list[CalibrationBin] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        """The single numbers, as logged to the model version."""
        values = asdict(self)
        return {
            key: float(value)
            for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def matched_predictions(history: History, model_name: str, window_days: int) -> pd.DataFrame:
    """One row per (model version, outcome): the outcome and the prediction it is judged by."""
    with history.engine.connect() as connection:
        frame = pd.read_sql_query(sa.text(MATCHED), connection, params={"model_name": model_name})
    for column in ("observed_at", "scored_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["churned"] = frame["churned"].astype(bool)
    frame["churn"] = frame["churn"].astype(bool)
    in_window = frame["scored_at"] >= frame["observed_at"] - timedelta(days=window_days)
    return frame[in_window].reset_index(drop=True)


def realised(matched: pd.DataFrame, economics: Economics) -> list[Realised]:
    """Per model version, in version order."""
    results = []
    versions = sorted(matched["model_version"].unique(), key=_version_order)
    for version in versions:
        rows = matched[matched["model_version"] == version]
        results.append(_realised(str(version), rows, economics))
    return results


def _realised(version: str, rows: pd.DataFrame, economics: Economics) -> Realised:
    y = rows["churned"].to_numpy(dtype=np.int64)
    scores = rows["churn_probability"].to_numpy(dtype=float)
    decided = rows["churn"].to_numpy(dtype=bool)
    targeted = (rows["action"].fillna(NO_ACTION) != NO_ACTION).to_numpy()
    both_classes = 0 < y.sum() < len(y)
    return Realised(
        model_version=version,
        customers=len(rows),
        churn_rate=float(y.mean()),
        roc_auc=float(roc_auc_score(y, scores)) if both_classes else None,
        pr_auc=float(average_precision_score(y, scores)) if both_classes else None,
        precision=float(y[decided].mean()) if decided.any() else 0.0,
        recall=float(decided[y == 1].mean()) if y.any() else 0.0,
        top_decile_lift=top_decile_lift(y, scores),
        targeted_share=float(targeted.mean()),
        profit_per_customer=campaign_profit(y, targeted, economics),
        calibration=calibration(y, scores),
    )


def calibration(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> list[CalibrationBin]:
    """Predicted against observed churn rate in each tenth of the customers by score."""
    order = np.argsort(-scores, kind="stable")
    result = []
    for decile, members in enumerate(np.array_split(order, min(bins, len(order))), start=1):
        result.append(
            CalibrationBin(
                decile=decile,
                customers=len(members),
                predicted_rate=float(scores[members].mean()),
                observed_rate=float(y[members].mean()),
            )
        )
    return result


def _version_order(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), text) if text.isdigit() else (10**9, text)
