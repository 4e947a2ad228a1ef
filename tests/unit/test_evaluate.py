from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import (
    campaign_profit,
    choose_threshold,
    evaluate,
    profit_curve,
    top_decile_lift,
)
from training.settings import Economics

ECONOMICS = Economics(customer_value=500, offer_cost=50, contact_cost=5, acceptance_rate=0.3)
# A kept churner earns 0.3 * (500 - 50) - 5 = 130; a contacted stayer costs 50 + 5 = 55.


def test_campaign_profit_follows_the_retention_economics() -> None:
    y = np.array([1, 1, 0, 0, 0])
    targeted = np.array([True, False, True, True, False])
    assert campaign_profit(y, targeted, ECONOMICS) == pytest.approx((130 - 2 * 55) / 5)


def test_the_profit_curve_matches_campaign_profit_at_every_threshold() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 2)  # ties on purpose
    thresholds, profits = profit_curve(y, scores, ECONOMICS)
    for threshold, profit in zip(thresholds, profits, strict=True):
        assert profit == pytest.approx(campaign_profit(y, scores >= threshold, ECONOMICS))


def test_the_threshold_maximises_profit_on_the_data_it_is_given() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    scores = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    threshold = choose_threshold(y, scores, ECONOMICS)
    best = campaign_profit(y, scores >= threshold, ECONOMICS)
    for other in np.linspace(0, 1, 101):
        assert campaign_profit(y, scores >= other, ECONOMICS) <= best + 1e-12


def test_when_no_campaign_pays_nobody_is_targeted() -> None:
    costly = Economics(customer_value=10, offer_cost=50, contact_cost=5, acceptance_rate=0.1)
    y = np.array([1, 0, 1, 0])
    assert choose_threshold(y, np.array([0.9, 0.8, 0.7, 0.1]), costly) == 1.0


def test_top_decile_lift() -> None:
    y = np.array([1] * 10 + [0] * 90)
    scores = np.linspace(1, 0, 100)  # the ten churners score highest
    assert top_decile_lift(y, scores) == pytest.approx(10.0)


def test_evaluate_reports_threshold_metrics() -> None:
    y = np.array([1, 1, 0, 0])
    metrics = evaluate(y, np.array([0.9, 0.4, 0.6, 0.1]), 0.5, ECONOMICS)
    assert (metrics.precision, metrics.recall, metrics.roc_auc) == (0.5, 0.5, 0.75)
    assert metrics.targeted_share == 0.5
