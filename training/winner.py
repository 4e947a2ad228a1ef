"""Which candidate is registered: the best expected campaign profit on the validation split,
unless its lead is within noise, when the lower validation log-loss decides among the tied.

Profit counts the customers on one side of one threshold, so it is a noisy judge on a small
split: over 20 splits of the Telco table (1,409 validation customers each) it chose the
baseline in 10, while CatBoost had the lower validation log-loss in all 20 and the higher test
ROC-AUC in 18. Log-loss scores every probability, and every decision the model makes
multiplies one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from training.evaluate import Metrics, customer_profit
from training.settings import Economics

# Two-sided 95%: a lead smaller than this many standard errors is within noise.
Z_95 = 1.96


class Judged(Protocol):
    @property
    def threshold(self) -> float: ...

    @property
    def validation(self) -> Metrics: ...


@dataclass(frozen=True)
class Lead:
    """The profit leader's lead over one other candidate, per validation customer."""

    over: str
    difference: float
    low: float
    high: float

    @property
    def clear(self) -> bool:
        return self.low > 0


@dataclass(frozen=True)
class WinnerChoice:
    name: str
    leader: str
    leads: list[Lead]

    @property
    def reason(self) -> str:
        if not self.leads:
            return "the only candidate"
        spans = "; ".join(
            f"over {lead.over} {lead.difference:+.2f} per customer, 95% interval "
            f"{lead.low:+.2f} to {lead.high:+.2f}"
            for lead in self.leads
        )
        if all(lead.clear for lead in self.leads):
            return f"best validation profit ({spans})"
        return (
            f"lower validation log-loss; the profit lead of {self.leader} is within noise ({spans})"
        )


def pick_winner(
    candidates: Mapping[str, Judged],
    valid_scores: Mapping[str, np.ndarray],
    y_valid: np.ndarray,
    economics: Economics,
) -> WinnerChoice:
    """`candidates` and `valid_scores` by name: each one's validation metrics, threshold and
    validation probabilities (calibrated, as served)."""
    leader = max(
        candidates,
        key=lambda name: (
            candidates[name].validation.expected_profit_per_customer,
            candidates[name].validation.roc_auc,
        ),
    )
    profits = {
        name: customer_profit(y_valid, valid_scores[name] >= judged.threshold, economics)
        for name, judged in candidates.items()
    }
    leads = [_lead(name, profits[leader] - profits[name]) for name in candidates if name != leader]
    tied = [leader, *(lead.over for lead in leads if not lead.clear)]
    winner = min(tied, key=lambda name: (candidates[name].validation.log_loss, name != leader))
    return WinnerChoice(winner, leader, leads)


def _lead(over: str, differences: Sequence[float] | np.ndarray) -> Lead:
    values = np.asarray(differences, dtype=float)
    mean = float(values.mean())
    error = float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else math.inf
    return Lead(over, mean, mean - Z_95 * error, mean + Z_95 * error)
