"""Metrics for a churn scorer: ranking quality, calibration, and what a retention campaign earns."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from training.settings import Economics


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    expected_calibration_error: float
    precision: float
    recall: float
    f1: float
    top_decile_lift: float
    expected_profit_per_customer: float
    max_profit_per_customer: float
    targeted_share: float
    threshold: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def campaign_profit(y_true: np.ndarray, targeted: np.ndarray, economics: Economics) -> float:
    """Expected profit per customer of offering retention to the `targeted` customers.

    A targeted churner accepts the offer with probability `acceptance_rate` and is kept, worth
    `customer_value - offer_cost`; every contact costs `contact_cost`; a targeted non-churner
    takes the offer anyway and costs `offer_cost + contact_cost` (Verbraken et al., 2013).
    """
    if len(y_true) == 0:
        return 0.0
    return float(customer_profit(y_true, targeted, economics).mean())


def customer_profit(y_true: np.ndarray, targeted: np.ndarray, economics: Economics) -> np.ndarray:
    """What targeting (or not) earned on each customer, as `campaign_profit` counts it."""
    gain_per_churner = (
        economics.acceptance_rate * (economics.customer_value - economics.offer_cost)
        - economics.contact_cost
    )
    cost_per_stayer = economics.offer_cost + economics.contact_cost
    return np.where(targeted, np.where(y_true == 1, gain_per_churner, -cost_per_stayer), 0.0)


def profit_curve(
    y_true: np.ndarray, scores: np.ndarray, economics: Economics
) -> tuple[np.ndarray, np.ndarray]:
    """Profit per customer when targeting everyone at or above each distinct score."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_y = scores[order], y_true[order]
    gain = (
        economics.acceptance_rate * (economics.customer_value - economics.offer_cost)
        - economics.contact_cost
    )
    cost = economics.offer_cost + economics.contact_cost
    cumulative = np.cumsum(np.where(sorted_y == 1, gain, -cost)) / len(y_true)
    # Only the last position of each run of tied scores is a reachable threshold.
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    thresholds = np.concatenate([[np.inf], sorted_scores[last_of_tie]])
    profits = np.concatenate([[0.0], cumulative[last_of_tie]])
    return thresholds, profits


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, economics: Economics) -> float:
    """The score cut-off that maximises expected campaign profit on the given (validation) data."""
    thresholds, profits = profit_curve(y_true, scores, economics)
    best = int(np.argmax(profits))
    if not np.isfinite(thresholds[best]):
        return 1.0  # no campaign pays: target nobody
    return float(thresholds[best])


def top_decile_lift(y_true: np.ndarray, scores: np.ndarray) -> float:
    base_rate = float(np.mean(y_true))
    if base_rate == 0:
        return 0.0
    top = max(1, int(np.ceil(len(scores) * 0.1)))
    order = np.argsort(-scores, kind="stable")[:top]
    return float(np.mean(y_true[order]) / base_rate)


def expected_calibration_error(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """The customers-weighted mean gap between predicted and observed churn, in ten equal-width
    probability bins."""
    index = np.minimum((np.asarray(scores) * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(float(scores[members].mean()) - float(y[members].mean()))
    return float(error)


def evaluate(
    y_true: np.ndarray, scores: np.ndarray, threshold: float, economics: Economics
) -> Metrics:
    predicted = scores >= threshold
    _, profits = profit_curve(y_true, scores, economics)
    clipped = np.clip(scores, 1e-15, 1 - 1e-15)
    return Metrics(
        roc_auc=float(roc_auc_score(y_true, scores)),
        pr_auc=float(average_precision_score(y_true, scores)),
        log_loss=float(log_loss(y_true, clipped, labels=[0, 1])),
        brier=float(brier_score_loss(y_true, scores)),
        expected_calibration_error=expected_calibration_error(y_true, scores),
        precision=float(precision_score(y_true, predicted, zero_division=0)),
        recall=float(recall_score(y_true, predicted, zero_division=0)),
        f1=float(f1_score(y_true, predicted, zero_division=0)),
        top_decile_lift=top_decile_lift(y_true, scores),
        expected_profit_per_customer=campaign_profit(y_true, predicted, economics),
        max_profit_per_customer=float(np.max(profits)),
        targeted_share=float(np.mean(predicted)),
        threshold=float(threshold),
    )
