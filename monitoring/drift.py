"""Drift of one model version: its reference profile against a window of recorded rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from churn.reference import FeatureBins, ReferenceProfile
from monitoring.psi import Stability, psi, shares, stability


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float | None
    stability: Stability
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    # Shares of the window's rows in each bin, and how many rows there were.
    current: tuple[float, ...]
    rows: int


@dataclass(frozen=True)
class DriftReport:
    model_version: str
    since: datetime
    until: datetime
    prediction: FeatureDrift
    features: tuple[FeatureDrift, ...]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


# Below this many rows in a window, PSI is noise (one customer gave 8.3): no value is claimed.
MIN_ROWS = 500


def feature_drift(
    bins: FeatureBins, counts: dict[int, int], min_rows: int = MIN_ROWS
) -> FeatureDrift:
    current = [counts.get(index, 0) for index in range(len(bins.labels))]
    rows = sum(current)
    value = psi(bins.shares, current) if rows >= min_rows else None
    return FeatureDrift(
        bins.feature,
        None if value is None else round(value, 6),
        "too few rows" if 0 < rows < min_rows else stability(value),
        bins.labels,
        bins.shares,
        tuple(float(share) for share in shares(current)),
        rows,
    )


def drift_report(
    reference: ReferenceProfile,
    counts: dict[str, dict[int, int]],
    model_version: str,
    since: datetime,
    until: datetime,
    min_rows: int = MIN_ROWS,
) -> DriftReport:
    """PSI of the prediction deciles and of each feature, most drifted feature first; none
    for one with fewer than `min_rows` rows in the window."""
    features = [
        feature_drift(bins, counts.get(bins.feature, {}), min_rows) for bins in reference.features
    ]
    features.sort(key=lambda drift: -1.0 if drift.psi is None else -drift.psi)
    prediction = feature_drift(
        reference.prediction, counts.get(reference.prediction.feature, {}), min_rows
    )
    return DriftReport(model_version, since, until, prediction, tuple(features))
