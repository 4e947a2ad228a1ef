"""The population stability index between a reference and a current distribution over bins.

PSI = sum over bins of (current - reference) x ln(current / reference), with every share floored
at EPSILON so that an empty bin on either side counts as rare, not as infinitely different.
Below 0.1 a distribution is stable, from 0.1 it has moved moderately, from 0.25 significantly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

EPSILON = 1e-4
MODERATE = 0.1
SIGNIFICANT = 0.25
Stability = Literal["stable", "moderate", "significant", "no data", "too few rows"]


def shares(counts: Sequence[float]) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    total = values.sum()
    return values / total if total > 0 else values


def psi(reference: Sequence[float], current_counts: Sequence[float]) -> float | None:
    """PSI of the current counts against the reference shares; None without current rows."""
    if sum(current_counts) <= 0:
        return None
    expected = np.maximum(np.asarray(reference, dtype=float), EPSILON)
    actual = np.maximum(shares(current_counts), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def stability(value: float | None) -> Stability:
    if value is None:
        return "no data"
    if value >= SIGNIFICANT:
        return "significant"
    return "moderate" if value >= MODERATE else "stable"
