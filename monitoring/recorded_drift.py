"""The drift of a model version over a window of the prediction history: the one place that
turns a window into recorded counts and a report, for the service's monitor and console and
for `training drift`."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from churn.reference import ReferenceProfile
from history.reader import drift_counts
from monitoring.drift import MIN_ROWS, DriftReport, drift_report
from monitoring.settings import DriftSettings


def recorded_drift(
    engine: sa.Engine,
    reference: ReferenceProfile,
    version: str,
    since: datetime,
    until: datetime,
    min_rows: int = MIN_ROWS,
) -> DriftReport:
    counts = drift_counts(engine, version, since, until)
    return drift_report(reference, counts, version, since, until, min_rows)


def recent_drift(
    engine: sa.Engine,
    reference: ReferenceProfile,
    version: str,
    drift: DriftSettings,
    now: datetime | None = None,
) -> DriftReport:
    """Drift over the settings' window up to `now` (default: this moment)."""
    until = now or datetime.now(UTC)
    return recorded_drift(engine, reference, version, until - drift.window, until, drift.min_rows)
