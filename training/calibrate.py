"""Choosing a candidate's calibration on the validation split.

Platt scaling and isotonic regression are each judged by their cross-fitted log-loss on the
validation split (fitted on k-1 folds, scored on the one left out), against the probabilities
as they are; the lowest wins, and is then fitted on the whole validation split. Judging a
calibrator on the rows it was fitted on would always favour isotonic regression, which can
memorise them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import StratifiedKFold

from churn.calibration import EPSILON, Calibration, Method, calibrated
from training.evaluate import expected_calibration_error

FOLDS = 5
METHODS: tuple[Method, ...] = ("platt", "isotonic")


@dataclass(frozen=True)
class CalibrationChoice:
    calibration: Calibration | None
    # Cross-fitted validation log-loss of the probabilities as they are ("none") and of each
    # method.
    log_loss: dict[str, float]
    # On the validation split, before and after the chosen calibration.
    brier_before: float
    brier_after: float
    ece_before: float
    ece_after: float

    @property
    def method(self) -> str:
        return "none" if self.calibration is None else self.calibration.method

    def metrics(self) -> dict[str, float]:
        return {
            **{
                f"calibration.cv_log_loss.{method}": value
                for method, value in self.log_loss.items()
            },
            "calibration.brier_before": self.brier_before,
            "calibration.brier_after": self.brier_after,
            "calibration.ece_before": self.ece_before,
            "calibration.ece_after": self.ece_after,
        }


def choose_calibration(scores: np.ndarray, y: np.ndarray, seed: int) -> CalibrationChoice:
    folds = min(FOLDS, int(np.bincount(y, minlength=2).min()))
    losses = {"none": _log_loss(y, scores)}
    if folds >= 2:
        for method in METHODS:
            losses[method] = _log_loss(y, _cross_fitted(method, scores, y, folds, seed))
    best = min(losses, key=lambda method: losses[method])
    calibration = None if best == "none" else fit(best, scores, y)  # type: ignore[arg-type]
    after = calibrated(calibration, scores)
    return CalibrationChoice(
        calibration,
        losses,
        brier_before=float(brier_score_loss(y, scores)),
        brier_after=float(brier_score_loss(y, after)),
        ece_before=expected_calibration_error(y, scores),
        ece_after=expected_calibration_error(y, after),
    )


def fit(method: Method, scores: np.ndarray, y: np.ndarray) -> Calibration:
    if method == "platt":
        p = np.clip(scores, EPSILON, 1 - EPSILON)
        logit = np.log(p / (1 - p)).reshape(-1, 1)
        model = LogisticRegression(C=1e6, max_iter=1000).fit(logit, y)
        return Calibration(
            "platt", slope=float(model.coef_[0, 0]), intercept=float(model.intercept_[0])
        )
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    return Calibration(
        "isotonic",
        x=tuple(float(v) for v in isotonic.X_thresholds_),
        y=tuple(float(v) for v in isotonic.y_thresholds_),
    )


def _cross_fitted(
    method: Method, scores: np.ndarray, y: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    out = np.empty(len(scores))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fitted_on, left_out in splitter.split(scores.reshape(-1, 1), y):
        out[left_out] = fit(method, scores[fitted_on], y[fitted_on]).apply(scores[left_out])
    return out


def _log_loss(y: np.ndarray, scores: np.ndarray) -> float:
    return float(log_loss(y, np.clip(scores, EPSILON, 1 - EPSILON), labels=[0, 1]))
