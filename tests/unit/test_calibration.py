"""Calibration: chosen by cross-fitted validation log-loss, carried and applied by the model."""

from __future__ import annotations

import numpy as np
import pytest

from churn.calibration import Calibration
from churn.errors import UserError
from training.calibrate import choose_calibration
from training.evaluate import expected_calibration_error
from training.search_options import SearchOptions


def _outcomes(probability: np.ndarray, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(len(probability)) < probability).astype(int)


def test_overconfident_scores_are_calibrated_and_their_error_falls() -> None:
    truth = np.random.default_rng(1).uniform(0.05, 0.6, 4000)
    y = _outcomes(truth)
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-2.5 * logit))
    choice = choose_calibration(overconfident, y, seed=3)
    assert choice.calibration is not None
    assert choice.log_loss[choice.method] < choice.log_loss["none"]
    assert choice.ece_after < choice.ece_before / 2
    assert choice.ece_after < 0.03


def test_scores_that_are_already_calibrated_are_left_as_they_are() -> None:
    truth = np.random.default_rng(2).uniform(0.05, 0.6, 4000)
    choice = choose_calibration(truth, _outcomes(truth, 5), seed=3)
    assert choice.method == "none" and choice.calibration is None
    assert choice.brier_after == choice.brier_before


@pytest.mark.parametrize(
    "calibration",
    [
        Calibration("platt", slope=0.5, intercept=-0.2),
        Calibration("isotonic", x=(0.1, 0.5, 0.9), y=(0.05, 0.3, 0.8)),
    ],
)
def test_a_calibration_keeps_the_order_and_stays_a_probability(calibration: Calibration) -> None:
    scores = np.linspace(0, 1, 101)
    mapped = calibration.apply(scores)
    assert np.all(np.diff(mapped) >= 0)
    assert mapped.min() >= 0 and mapped.max() <= 1


def test_the_expected_calibration_error_is_the_weighted_gap_per_bin() -> None:
    scores = np.array([0.05, 0.05, 0.95, 0.95])
    assert expected_calibration_error(np.array([0, 0, 1, 1]), scores) == pytest.approx(0.05)
    assert expected_calibration_error(np.array([1, 1, 0, 0]), scores) == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SearchOptions(trials=None, budget_minutes=0), "--budget-minutes: 0 is not above 0"),
        (SearchOptions(trials=-2, budget_minutes=None), "--trials: -2 is not 1 or more"),
        (SearchOptions(trials=3, budget_minutes=None, folds=5), "at least 5 rows of each class"),
    ],
)
def test_a_search_that_cannot_run_is_refused(options: SearchOptions, message: str) -> None:
    with pytest.raises(UserError, match=message):
        options.check(np.array([0] * 50 + [1] * 4))
