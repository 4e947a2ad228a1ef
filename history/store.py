"""The history database as the programs use it: opened (and migrated) from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

import sqlalchemy as sa

from churn.errors import UserError
from history import reader
from history.agreement import Agreement, agreement
from history.customer_ids import CustomerIds
from history.database import DATABASE_ERRORS, engine_for
from history.drift_counts import DriftCounter
from history.schema import migrate, prune
from history.settings import HistorySettings
from history.sinks import sink_for
from history.writer import HistoryWriter, WriterEvents


def unreachable(url: str, error: Exception) -> UserError:
    shown = sa.engine.make_url(url).render_as_string() if "://" in url else repr(url)
    first_line = str(error).strip().splitlines()[0]
    return UserError(
        f"Cannot open the prediction history at CHURN_HISTORY_URL ({shown}): {first_line}"
    )


@dataclass(frozen=True)
class History:
    settings: HistorySettings
    engine: sa.Engine
    ids: CustomerIds

    @classmethod
    def open(cls, settings: HistorySettings) -> History:
        """Connect and bring the schema up to date; UserError, naming the URL, if it cannot."""
        try:
            engine = engine_for(settings.url)
            migrate(engine)
        except DATABASE_ERRORS as error:
            raise unreachable(settings.url, error) from None
        return cls(settings, engine, CustomerIds.from_settings(settings))

    def writer(
        self, events: WriterEvents | None = None, drift: DriftCounter | None = None
    ) -> HistoryWriter:
        """A writer that also drops days past retention, hourly, and counts rows for `drift`;
        start it, close it at exit."""
        settings = self.settings
        return HistoryWriter(
            sink_for(self.engine),
            self.ids,
            feature_sample=settings.feature_sample,
            buffer_rows=settings.buffer_rows,
            batch_rows=settings.batch_rows,
            flush_seconds=settings.flush_seconds,
            events=events or WriterEvents(),
            housekeeping=partial(prune, self.engine, settings.retention_days),
            drift=drift,
        )

    def customer_history(
        self,
        customer_id: str,
        limit: int = 50,
        before: datetime | None = None,
        stored: bool = False,
    ) -> reader.HistoryPage:
        return reader.customer_history(self.engine, self.ids, customer_id, limit, before, stored)

    def summary(self, since: date, until: date) -> list[dict[str, object]]:
        return reader.summary(self.engine, since, until)

    def newly_high(self, since: datetime, lookback: datetime) -> list[dict[str, object]]:
        return reader.newly_high(self.engine, since, lookback)

    def at_risk(self, since: datetime) -> dict[str, float]:
        return reader.at_risk(self.engine, since)

    def agreement(self, since: datetime, until: datetime) -> list[Agreement]:
        return agreement(self.engine, since, until)
