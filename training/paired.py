"""Two versions judged on the same customers' outcomes: the difference in realised ROC-AUC,
PR-AUC and campaign profit, with a paired bootstrap 95% interval.

Only outcomes that both versions had predicted (in the outcome window) count, so the two are
compared on exactly the same customers; the bootstrap resamples those customers, keeping each
customer's pair together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.playbook import NO_ACTION
from training.evaluate import customer_profit
from training.settings import Economics

ROUNDS = 1000
METRICS = ("profit_per_customer", "roc_auc", "pr_auc")


@dataclass(frozen=True)
class Difference:
    metric: str
    champion: float | None
    challenger: float | None
    # Challenger minus champion, and its 95% interval; None when outcomes hold one class only.
    difference: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Paired:
    champion_version: str
    challenger_version: str
    customers: int
    differences: list[Difference]

    def of(self, metric: str) -> Difference:
        return next(d for d in self.differences if d.metric == metric)


def paired(
    matched: pd.DataFrame,
    champion: str,
    challenger: str,
    economics: Economics,
    rounds: int = ROUNDS,
    seed: int = 0,
) -> Paired:
    """`matched` is `training.realised.matched_predictions`: one row per version and outcome."""
    keys = ["customer_id", "observed_at"]
    columns = [*keys, "churned", "churn_probability", "action"]
    both = matched[matched["model_version"] == champion][columns].merge(
        matched[matched["model_version"] == challenger][columns],
        on=keys,
        suffixes=("_champion", "_challenger"),
    )
    y = both["churned_champion"].to_numpy(dtype=np.int64)
    scores = {
        arm: both[f"churn_probability_{arm}"].to_numpy(dtype=float)
        for arm in ("champion", "challenger")
    }
    targeted = {
        arm: (both[f"action_{arm}"].fillna(NO_ACTION) != NO_ACTION).to_numpy()
        for arm in ("champion", "challenger")
    }
    profits = {arm: customer_profit(y, targeted[arm], economics) for arm in targeted}
    samples = np.random.default_rng(seed).integers(0, len(y), size=(rounds, len(y)))
    differences = [
        _difference("profit_per_customer", profits, samples, lambda _, values: values.mean(), y),
        _difference("roc_auc", scores, samples, _ranked(roc_auc_score), y),
        _difference("pr_auc", scores, samples, _ranked(average_precision_score), y),
    ]
    return Paired(champion, challenger, len(y), differences)


def _ranked(score: Any) -> Any:
    def metric(y: np.ndarray, values: np.ndarray) -> float:
        return float(score(y, values)) if 0 < y.sum() < len(y) else float("nan")

    return metric


def _difference(
    name: str,
    arms: dict[str, np.ndarray],
    samples: np.ndarray,
    metric: Any,
    y: np.ndarray,
) -> Difference:
    if len(y) == 0 or (not 0 < y.sum() < len(y) and name != "profit_per_customer"):
        return Difference(name, None, None, None, None, None)
    champion = float(metric(y, arms["champion"]))
    challenger = float(metric(y, arms["challenger"]))
    resampled = np.array(
        [metric(y[s], arms["challenger"][s]) - metric(y[s], arms["champion"][s]) for s in samples]
    )
    resampled = resampled[~np.isnan(resampled)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return Difference(name, champion, challenger, challenger - champion, float(low), float(high))
