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
    """Counts the rows of one model version against that version's reference."""

    def __init__(self, spec: FeatureSpec, reference: ReferenceProfile, model_version: str) -> None:
        self.spec = spec
        self.reference = reference
        self.model_version = model_version

    def count(self, rows: Sequence[Row]) -> list[DriftCount]:
        counts: Counter[tuple[datetime, str, int]] = Counter()
        mine = [row for row in rows if row[MODEL_VERSION] == self.model_version]
        for row in mine:
            decile = row[DECILE]
            if decile is not None:
                counts[bucket_of(row[SCORED_AT]), PREDICTION, int(decile) - 1] += 1
        sampled = [row for row in mine if row[FEATURES] is not None]
        if sampled:
            raw = pd.DataFrame([row[FEATURES] for row in sampled])
            for name in self.spec.names:
                if name not in raw.columns:
                    raw[name] = None
            bins = self.reference.feature_bins(self.spec.prepare_columns(raw))
            buckets = [bucket_of(row[SCORED_AT]) for row in sampled]
            for feature, feature_bins in bins.items():
                for bucket, bin_ in zip(buckets, np.asarray(feature_bins).tolist(), strict=True):
                    counts[bucket, feature, bin_] += 1
        return [
            DriftCount(bucket, self.model_version, feature, bin_, rows)
            for (bucket, feature, bin_), rows in sorted(counts.items())
        ]
