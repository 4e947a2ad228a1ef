"""Behavioural segments: KMeans on scaled numerics and one-hot categoricals, named by profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from training.columns import Table
from training.features import FeatureSpec, numeric_matrix

K_RANGE = range(3, 7)
DEFAULT_K = 4
SILHOUETTE_SAMPLE = 4000
MAX_ONE_HOT_LEVELS = 12


@dataclass(frozen=True)
class SegmentProfile:
    segment_id: int
    name: str
    size: int
    share: float
    churn_rate: float
    numeric_means: dict[str, float]
    top_levels: dict[str, str]


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
        # One dictionary lookup per value and one write for all of them: comparing every value
        # with every level took 120 of a 3-customer batch's 290 us.
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
        return [p.__dict__ for p in self.profiles]


def fit_segments(
    spec: FeatureSpec, features: pd.DataFrame, churned: np.ndarray, seed: int, k: int | None = None
) -> Segmenter:
    """Fit on the training split only; k is the best silhouette in 3..6 unless given."""
    numeric = tuple(spec.numeric)
    numbers = features[list(numeric)].to_numpy(dtype=float)
    medians = np.nanmedian(numbers, axis=0) if numeric else np.zeros(0)
    filled = np.where(np.isnan(numbers), medians, numbers)
    means, scales = filled.mean(axis=0), filled.std(axis=0)
    scales = np.where(scales == 0, 1.0, scales)
    one_hot = tuple(
        (name, tuple(features[name].value_counts().index[:MAX_ONE_HOT_LEVELS].astype(str)))
        for name in spec.categorical
    )
    draft = Segmenter(numeric, means, scales, medians, one_hot, np.zeros((1, 1)), ())
    encoded = draft.encode(features)

    scores: dict[int, float] = {}
    if k is None:
        rng = np.random.default_rng(seed)
        sample = encoded[rng.permutation(len(encoded))[:SILHOUETTE_SAMPLE]]
        for candidate in K_RANGE:
            if len(sample) <= candidate:
                continue
            labels = KMeans(candidate, n_init=4, random_state=seed).fit_predict(sample)
            scores[candidate] = float(silhouette_score(sample, labels))
        k = max(scores, key=lambda c: scores[c]) if scores else DEFAULT_K
    model = KMeans(k, n_init=4, random_state=seed).fit(encoded)
    labels = model.labels_
    profiles = _profiles(spec, features, churned, labels, k)
    return Segmenter(
        numeric, means, scales, medians, one_hot, model.cluster_centers_, profiles, scores
    )


def _profiles(
    spec: FeatureSpec, features: pd.DataFrame, churned: np.ndarray, labels: np.ndarray, k: int
) -> tuple[SegmentProfile, ...]:
    overall = {name: features[name].astype(float).mean() for name in spec.numeric}
    spread = {name: features[name].astype(float).std() or 1.0 for name in spec.numeric}
    profiles: list[SegmentProfile] = []
    used: set[str] = set()
    for segment in range(k):
        members = features[labels == segment]
        means = {name: float(members[name].astype(float).mean()) for name in spec.numeric}
        top_levels = {name: str(members[name].mode().iloc[0]) for name in spec.categorical}
        name = _name(spec, features, members, means, overall, spread, used)
        used.add(name)
        profiles.append(
            SegmentProfile(
                segment_id=segment,
                name=name,
                size=len(members),
                share=len(members) / len(features),
                churn_rate=float(churned[labels == segment].mean()) if len(members) else 0.0,
                numeric_means=means,
                top_levels=top_levels,
            )
        )
    return tuple(profiles)


def _name(
    spec: FeatureSpec,
    everyone: pd.DataFrame,
    members: pd.DataFrame,
    means: dict[str, float],
    overall: dict[str, float],
    spread: dict[str, float],
    used: set[str],
) -> str:
    """e.g. "low-tenure Month-to-month Fiber optic customers": the most distinctive traits."""
    words = []
    if spec.numeric:
        z = {n: (means[n] - overall[n]) / spread[n] for n in spec.numeric}
        strongest = max(z, key=lambda n: abs(z[n]))
        words.append(f"{'high' if z[strongest] > 0 else 'low'}-{strongest}")
    lifts = []
    for name in spec.categorical:
        share_here = members[name].value_counts(normalize=True).to_dict()
        share_all = everyone[name].value_counts(normalize=True).to_dict()
        for level, share in share_here.items():
            lift = float(share) / float(share_all[level])
            # Common and over-represented: a trait of this segment, not of everyone.
            if share >= 0.5 and lift >= 1.25 and not str(level).startswith(("No", "__")):
                # "Yes" alone says nothing: name the column instead ("StreamingTV").
                generic = str(level).lower() in {"yes", "true", "1", "y"}
                lifts.append((lift, str(name) if generic else str(level)))
    for _, level in sorted(lifts, reverse=True)[:2]:
        words.append(level)
    name = " ".join([*words, "customers"])
    suffix = 2
    while name in used:
        name = f"{' '.join(words)} customers ({suffix})"
        suffix += 1
    return name
