"""The reference profile a model version is compared with for drift, fitted on its training split.

Each numeric feature gets bins between its training deciles, each categorical feature one bin
per level it was trained with and one for levels it never saw, and every feature one bin for
missing values. Predictions are binned by the model's own deciles. The shares of the training
split in each bin are what later traffic is measured against (monitoring/psi.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import Table
from churn.deciles import Deciles
from churn.features import MISSING_CATEGORY, FeatureSpec

PREDICTION = "__prediction__"
# Bins of a feature's values: numerics by edges, categoricals by level; the last two are the
# levels never seen in training and missing values.
UNSEEN = "__unseen__"
MISSING = "__missing__"
NUMERIC_QUANTILES = np.linspace(0.1, 0.9, 9)


@dataclass(frozen=True)
class FeatureBins:
    feature: str
    kind: str  # "numeric" or "categorical"
    # numeric: inner edges, ascending; bin i holds values in [edges[i-1], edges[i]).
    edges: tuple[float, ...] = ()
    # categorical: the levels, one bin each.
    levels: tuple[str, ...] = ()
    # The training split's share in each bin, in `labels` order.
    shares: tuple[float, ...] = ()
    # numeric: the smallest and largest value in the training split.
    low: float | None = None
    high: float | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        if self.kind == "numeric":
            bounds = ["-inf", *(f"{edge:g}" for edge in self.edges), "inf"]
            return (*(f"[{a}, {b})" for a, b in pairwise(bounds)), MISSING)
        return (*self.levels, UNSEEN, MISSING)

    def assign(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value (prepared: floats with NaN, or level text)."""
        if self.kind == "numeric":
            numbers = np.asarray(values, dtype=float)
            bins = np.searchsorted(np.asarray(self.edges), numbers, side="right")
            return np.where(np.isnan(numbers), len(self.edges) + 1, bins)
        position = {level: index for index, level in enumerate(self.levels)}
        unseen, missing = len(self.levels), len(self.levels) + 1
        return np.array(
            [
                missing if level == MISSING_CATEGORY else position.get(level, unseen)
                for level in np.asarray(values, dtype=object).tolist()
            ],
            dtype=np.int64,
        )


@dataclass(frozen=True)
class ReferenceProfile:
    features: tuple[FeatureBins, ...]
    prediction: FeatureBins

    @classmethod
    def fit(
        cls, spec: FeatureSpec, train: pd.DataFrame, deciles: Deciles, scores: np.ndarray
    ) -> ReferenceProfile:
        """From the prepared training split, and the model's deciles and scores on it."""
        bins = []
        for feature in spec.features:
            column = np.asarray(train[feature.name])
            if feature.kind == "numeric":
                numbers = column.astype(float)
                known = numbers[~np.isnan(numbers)]
                edges = np.unique(np.quantile(known, NUMERIC_QUANTILES)) if known.size else ()
                draft = FeatureBins(
                    feature.name,
                    "numeric",
                    tuple(float(e) for e in edges),
                    low=float(known.min()) if known.size else None,
                    high=float(known.max()) if known.size else None,
                )
            else:
                levels = tuple(level for level in feature.levels if level != MISSING_CATEGORY)
                draft = FeatureBins(feature.name, "categorical", levels=levels)
            bins.append(_with_shares(draft, column))
        # Decile 1 is the riskiest: bin i is decile i + 1.
        prediction = FeatureBins(PREDICTION, "categorical", levels=tuple(map(str, range(1, 11))))
        prediction = _with_shares(prediction, deciles.assign(scores).astype(str))
        return cls(tuple(bins), prediction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        def bins(item: dict[str, Any]) -> FeatureBins:
            return FeatureBins(
                item["feature"],
                item["kind"],
                tuple(item.get("edges", ())),
                tuple(item.get("levels", ())),
                tuple(item.get("shares", ())),
                item.get("low"),
                item.get("high"),
            )

        return cls(tuple(bins(item) for item in data["features"]), bins(data["prediction"]))

    def feature_bins(self, features: Table) -> dict[str, np.ndarray]:
        """Each feature's bin for each row of prepared `features`."""
        return {
            bins.feature: bins.assign(np.asarray(features[bins.feature])) for bins in self.features
        }

    def prediction_bins(self, deciles: np.ndarray) -> np.ndarray:
        return np.asarray(deciles, dtype=np.int64) - 1


def _with_shares(bins: FeatureBins, values: np.ndarray) -> FeatureBins:
    counts = np.bincount(bins.assign(values), minlength=len(bins.labels))
    total = max(int(counts.sum()), 1)
    return replace(bins, shares=tuple(float(c) / total for c in counts))
