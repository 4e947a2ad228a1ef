"""The drift of a model version over a window of the prediction history: the one place that
turns a window into recorded counts and a report, for the service's monitor and console and
for `training drift`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from churn.reference import ReferenceProfile
from history.reader import drift_counts
from monitoring.drift import DriftReport, drift_report


def recorded_drift(
    engine: sa.Engine, reference: ReferenceProfile, version: str, since: datetime, until: datetime
) -> DriftReport:
    counts = drift_counts(engine, version, since, until)
    return drift_report(reference, counts, version, since, until)


def recent_drift(
    engine: sa.Engine,
    reference: ReferenceProfile,
    version: str,
    window: timedelta,
    now: datetime | None = None,
) -> DriftReport:
    """Drift over the `window` up to `now` (default: this moment)."""
    until = now or datetime.now(UTC)
    return recorded_drift(engine, reference, version, until - window, until)
