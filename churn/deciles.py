"""Deciles of churn probability relative to the training population (1 = highest risk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Deciles:
    cutoffs: tuple[float, ...]  # the 10th, 20th ... 90th percentiles, ascending

    @classmethod
    def from_scores(cls, scores: np.ndarray) -> Deciles:
        return cls(tuple(float(q) for q in np.quantile(scores, np.linspace(0.1, 0.9, 9))))

    def assign(self, probabilities: np.ndarray) -> np.ndarray:
        above = np.searchsorted(np.asarray(self.cutoffs), probabilities, side="right")
        return np.asarray(10 - above, dtype=np.int64)
