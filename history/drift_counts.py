"""Counting recorded rows into the served model's reference bins, as the writer writes them.

Every row counts its prediction decile; the rows that keep their features (the sampled share)
also count each feature's bin. The counts go to `drift_counts` in the same transaction as the
rows, per BUCKET_SECONDS bucket, so a drift refresh over a day sums a few thousand counts
instead of scanning a day of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd

from churn.features import FeatureSpec
from churn.reference import PREDICTION, ReferenceProfile
from history.records import COLUMNS, Row

BUCKET_SECONDS = 300
SCORED_AT, MODEL_VERSION, DECILE, FEATURES = (
    COLUMNS.index(name) for name in ("scored_at", "model_version", "decile", "features")
)


class DriftCount(NamedTuple):
    bucket: datetime
    model_version: str
    feature: str
    bin: int
    rows: int


def bucket_of(moment: datetime) -> datetime:
    seconds = moment.timestamp()
    return datetime.fromtimestamp(seconds - seconds % BUCKET_SECONDS, tz=moment.tzinfo)


class DriftCounter:
    """Counts rows against the reference of the version that scored them; a service that swaps
    versions (follow mode) counts for both while rows of each are still buffered."""

    def __init__(self, spec: FeatureSpec, reference: ReferenceProfile, model_version: str) -> None:
        self.profiles = {model_version: (spec, reference)}

    def with_version(
        self, spec: FeatureSpec, reference: ReferenceProfile, model_version: str
    ) -> DriftCounter:
        """Counts for `model_version` from now on, and for the version served until now while
        its last rows are still buffered; versions before that have no rows left to count."""
        counter = DriftCounter(spec, reference, model_version)
        previous = next(reversed(self.profiles))
        counter.profiles = {previous: self.profiles[previous], model_version: (spec, reference)}
        return counter

    def count(self, rows: Sequence[Row]) -> list[DriftCount]:
        counts: list[DriftCount] = []
        for version, (spec, reference) in self.profiles.items():
            mine = [row for row in rows if row[MODEL_VERSION] == version]
            if mine:
                counts += _count(spec, reference, version, mine)
        return counts


def _count(
    spec: FeatureSpec, reference: ReferenceProfile, version: str, rows: Sequence[Row]
) -> list[DriftCount]:
    counts: Counter[tuple[datetime, str, int]] = Counter()
    # A batch's rows share one scored_at, so each moment's bucket is worked out once.
    buckets_of: dict[datetime, datetime] = {}
    for row in rows:
        decile = row[DECILE]
        if decile is not None:
            scored_at = row[SCORED_AT]
            bucket = buckets_of.get(scored_at)
            if bucket is None:
                bucket = buckets_of[scored_at] = bucket_of(scored_at)
            counts[bucket, PREDICTION, int(decile) - 1] += 1
    sampled = [row for row in rows if row[FEATURES] is not None]
    if sampled:
        raw = pd.DataFrame([row[FEATURES] for row in sampled])
        for name in spec.names:
            if name not in raw.columns:
                raw[name] = None
        bins = reference.feature_bins(spec.prepare_columns(raw))
        buckets = [bucket_of(row[SCORED_AT]) for row in sampled]
        for feature, feature_bins in bins.items():
            for bucket, bin_ in zip(buckets, np.asarray(feature_bins).tolist(), strict=True):
                counts[bucket, feature, bin_] += 1
    return [
        DriftCount(bucket, version, feature, bin_, rows)
        for (bucket, feature, bin_), rows in sorted(counts.items())
    ]
