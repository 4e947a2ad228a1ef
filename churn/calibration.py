"""A probability calibration the registered model carries: Platt scaling or an isotonic map.

Training fits it on the validation split and keeps it only when it lowers the validation
log-loss (training/calibrate.py). It is applied to every probability the model gives, after
the estimator, so the threshold, tiers, deciles and expected values all see calibrated
probabilities. Both maps are monotonic, so the ranking and the reasons stay the estimator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Method = Literal["platt", "isotonic"]
EPSILON = 1e-6


@dataclass(frozen=True)
class Calibration:
    method: Method
    # Platt: p' = sigmoid(slope * logit(p) + intercept).
    slope: float = 1.0
    intercept: float = 0.0
    # Isotonic: p' interpolated between these points (x increasing).
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def apply(self, probability: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(probability, dtype=float), EPSILON, 1 - EPSILON)
        if self.method == "platt":
            logit = np.log(p / (1 - p))
            return np.asarray(1.0 / (1.0 + np.exp(-(self.slope * logit + self.intercept))))
        return np.asarray(np.interp(p, self.x, self.y))

    def describe(self) -> dict[str, Any]:
        if self.method == "platt":
            return {"method": "platt", "slope": self.slope, "intercept": self.intercept}
        return {"method": "isotonic", "points": len(self.x)}


def calibrated(calibration: Calibration | None, probability: np.ndarray) -> np.ndarray:
    return probability if calibration is None else calibration.apply(probability)
