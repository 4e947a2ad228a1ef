"""Fit behavioural segments on the training split: k by silhouette, ids by churn rate, and each
named by the traits most of its members share."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from churn.features import MISSING_CATEGORY, FeatureSpec
from churn.segments import Segmenter, SegmentProfile
from churn.traits import Trait, binary_levels

K_RANGE = range(3, 7)
DEFAULT_K = 4
SILHOUETTE_SAMPLE = 4000
# k-means finds its centroids on at most this many customers and then places everyone.
FIT_SAMPLE = 200_000
ENCODE_CHUNK = 200_000
MAX_ONE_HOT_LEVELS = 12
# A trait names a segment only when at least this share of its members have it ...
MIN_SHARE = 0.6
# ... and it is this many times as common in the segment as in everyone.
MIN_LIFT = 1.2
MAX_TRAITS = 3
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
UNNAMED = "mixed profile"


def fit_segments(
    spec: FeatureSpec, features: pd.DataFrame, churned: np.ndarray, seed: int, k: int | None = None
) -> Segmenter:
    """Fit on the training split only; k is the best silhouette in 3..6 unless given. Segment 0
    has the highest observed churn rate, segment 1 the next, and so on."""
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
    fitted_on = _sample(features, FIT_SAMPLE, seed)
    encoded = draft.encode(fitted_on)

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
    found = model.labels_
    if fitted_on is not features:
        del encoded
        found = np.concatenate([
            model.predict(draft.encode(features.iloc[start : start + ENCODE_CHUNK]))
            for start in range(0, len(features), ENCODE_CHUNK)
        ])  # fmt: skip
    rates = np.array([churned[found == s].mean() for s in range(k)])
    order = np.argsort(-np.nan_to_num(rates, nan=-1.0), kind="stable")
    new_id = np.empty(k, dtype=np.intp)
    new_id[order] = np.arange(k)
    labels = new_id[found]
    profiles = _profiles(spec, features, churned, labels, k)
    centroids = model.cluster_centers_[order]
    return Segmenter(numeric, means, scales, medians, one_hot, centroids, profiles, scores)


def _sample(features: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` customers, the same for the same seed; the table itself if it is smaller."""
    if len(features) <= rows:
        return features
    chosen = np.random.default_rng(seed).choice(len(features), rows, replace=False)
    return features.iloc[np.sort(chosen)]


def candidate_traits(spec: FeatureSpec, features: pd.DataFrame) -> list[Trait]:
    """Every trait a segment could be named by: each numeric at or beyond its population
    deciles and quartiles, each level, and both sides of each yes/no or 0/1 flag."""
    traits: list[Trait] = []
    for name in spec.numeric:
        values = features[name].to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        if known.size == 0:
            continue
        if set(np.unique(known).tolist()) <= {0.0, 1.0}:
            traits += [Trait(name, "flag", True), Trait(name, "flag", False)]
            continue
        bounds = sorted({_rounded(float(np.quantile(known, q))) for q in QUANTILES})
        for bound in bounds:
            traits += [Trait(name, "at_most", bound), Trait(name, "at_least", bound)]
    for name in spec.categorical:
        levels = [str(level) for level in features[name].value_counts().index[:MAX_ONE_HOT_LEVELS]]
        levels = [level for level in levels if level != MISSING_CATEGORY]
        true_levels = binary_levels(set(levels))
        if true_levels is not None:
            traits += [
                Trait(name, "flag", True, true_levels),
                Trait(name, "flag", False, true_levels),
            ]
        else:
            traits += [Trait(name, "level", level) for level in levels]
    return traits


def defining_traits(candidates: list[Trait], holds: np.ndarray, members: np.ndarray) -> list[Trait]:
    """The traits that set `members` apart: true of at least MIN_SHARE of them and at least
    MIN_LIFT times as common as in everyone; one per feature, the most distinctive first."""
    if not members.any():
        return []
    population = holds.mean(axis=1)
    shares = holds[:, members].mean(axis=1)
    best: dict[str, tuple[float, Trait]] = {}
    for trait, share, overall in zip(candidates, shares.tolist(), population.tolist(), strict=True):
        if share < MIN_SHARE or overall == 0 or share / overall < MIN_LIFT:
            continue
        lift = share / overall
        found = replace(trait, share=round(share, 4), population_share=round(overall, 4))
        held = best.get(trait.feature)
        if held is None or (lift, found.share) > (held[0], held[1].share):
            best[trait.feature] = (lift, found)
    ranked = sorted(best.values(), key=lambda item: (-item[0], -item[1].share, item[1].feature))
    # Telco's six add-on columns all have the level "No internet service": say it once.
    traits, phrases = [], set()
    for _, trait in ranked:
        if trait.phrase.lower() not in phrases:
            phrases.add(trait.phrase.lower())
            traits.append(trait)
    return traits


def _profiles(
    spec: FeatureSpec, features: pd.DataFrame, churned: np.ndarray, labels: np.ndarray, k: int
) -> tuple[SegmentProfile, ...]:
    candidates = candidate_traits(spec, features)
    holds = np.array([trait.holds(features) for trait in candidates], dtype=bool).reshape(
        len(candidates), len(features)
    )
    profiles: list[SegmentProfile] = []
    used: set[str] = set()
    for segment in range(k):
        in_segment = labels == segment
        members = features[in_segment]
        traits = defining_traits(candidates, holds, in_segment)
        name, named_by = _unique_name(traits, segment, used)
        used.add(name)
        profiles.append(
            SegmentProfile(
                segment_id=segment,
                name=name,
                size=len(members),
                share=len(members) / len(features),
                churn_rate=float(churned[in_segment].mean()) if len(members) else 0.0,
                numeric_means={n: float(members[n].astype(float).mean()) for n in spec.numeric},
                top_levels={n: str(members[n].mode().iloc[0]) for n in spec.categorical},
                traits=named_by,
            )
        )
    return tuple(profiles)


def _unique_name(
    traits: list[Trait], segment: int, used: set[str]
) -> tuple[str, tuple[Trait, ...]]:
    """The phrases of the first MAX_TRAITS traits, or of more when that name is taken (the id
    as a last resort), and the traits it names."""
    for count in range(min(MAX_TRAITS, len(traits)), len(traits) + 1):
        named_by = tuple(traits[:count])
        name = ", ".join(trait.phrase for trait in named_by) or UNNAMED
        if name not in used:
            return name, named_by
    named_by = tuple(traits[:MAX_TRAITS])
    return f"{', '.join(t.phrase for t in named_by) or UNNAMED} (segment {segment})", named_by


def _rounded(value: float) -> float:
    """Two significant digits, so a name says "tenure 12 or less", not "11.87 or less"."""
    return float(f"{value:.2g}")
