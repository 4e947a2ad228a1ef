"""Behavioural segments: the nearest KMeans centroid of scaled numerics and one-hot levels.

training/segmentation.py fits the centroids, numbers the segments by churn rate (0 is the
riskiest) and names each by the traits most of its members share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from churn.columns import Table
from churn.features import numeric_matrix
from churn.traits import Trait


@dataclass(frozen=True)
class SegmentProfile:
    segment_id: int
    name: str
    size: int
    share: float
    churn_rate: float
    numeric_means: dict[str, float]
    top_levels: dict[str, str]
    # What most members share, checked on the training split; the name says these.
    traits: tuple[Trait, ...] = ()

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described["traits"] = [{**asdict(t), "phrase": t.phrase} for t in self.traits]
        return described


@dataclass(frozen=True)
class Segmenter:
    numeric: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    medians: np.ndarray
    one_hot: tuple[tuple[str, tuple[str, ...]], ...]
    centroids: np.ndarray
    profiles: tuple[SegmentProfile, ...]
    silhouette: dict[int, float] = field(default_factory=dict)

    @property
    def names(self) -> np.ndarray:
        return np.array([p.name for p in self.profiles], dtype=object)

    def encode(self, features: Table) -> np.ndarray:
        """Scaled numerics, then the one-hot levels, row by row."""
        numbers = numeric_matrix(features, self.numeric)
        numbers = np.where(np.isnan(numbers), self.medians, numbers)
        width = len(self.numeric) + self._one_hot_width
        # One column past the end takes the levels that were not kept; it is cut off below.
        encoded = np.zeros((len(features), width + 1))
        encoded[:, : len(self.numeric)] = (numbers - self.means) / self.scales
        # One dictionary lookup per value and one write for all of them, rather than comparing
        # every value with every level.
        positions = np.array(
            [
                [position_of.get(value, width) for value in np.asarray(features[name]).tolist()]
                for name, position_of in self._one_hot_positions
            ],
            dtype=np.intp,
        ).reshape(len(self.one_hot), len(features))
        encoded[np.arange(len(features)), positions] = 1.0
        return encoded[:, :width]

    @cached_property
    def _one_hot_positions(self) -> tuple[tuple[str, dict[str, int]], ...]:
        """Per one-hot column, the column of `encode` that each kept level sets."""
        start = len(self.numeric)
        positions = []
        for name, levels in self.one_hot:
            positions.append((name, {level: start + code for code, level in enumerate(levels)}))
            start += len(levels)
        return tuple(positions)

    @property
    def _one_hot_width(self) -> int:
        return sum(len(levels) for _, levels in self.one_hot)

    def assign(self, features: Table) -> np.ndarray:
        encoded = self.encode(features)
        distances = ((encoded[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(distances.argmin(axis=1))

    def describe(self) -> list[dict[str, Any]]:
        return [profile.describe() for profile in self.profiles]
