"""Fit behavioural segments on the training split: k by silhouette, each named by its profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from churn.features import FeatureSpec
from churn.segments import Segmenter, SegmentProfile

K_RANGE = range(3, 7)
DEFAULT_K = 4
SILHOUETTE_SAMPLE = 4000
MAX_ONE_HOT_LEVELS = 12


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
