"""`python -m loadtests.recorded ANSWERED_CSV`: is every request Locust saw answered in the
prediction history, with one row per customer? Exit 1 if any is missing.

Run it after the service has stopped, so that its workers have written what they buffered.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from history.database import engine_for
from history.settings import HistorySettings

# The answered rows: a shadow challenger's rows are counted by churn_challenger_dropped_total.
RECORDED = (
    "SELECT request_id, count(*) AS rows FROM predictions "
    "WHERE request_id LIKE 'lt-%' AND NOT shadow GROUP BY request_id"
)


def missing_requests(answered: pd.DataFrame, recorded: pd.DataFrame) -> pd.DataFrame:
    """The answered requests whose rows are not all in the history."""
    joined = answered.merge(recorded, on="request_id", how="left").fillna({"rows": 0})
    return joined[joined["rows"] != joined["customers"]]


def main(answered_csv: Path) -> int:
    answered = pd.read_csv(answered_csv)
    settings = HistorySettings()
    engine = engine_for(settings.url)
    with engine.connect() as connection:
        recorded = pd.read_sql_query(sa.text(RECORDED), connection)
    missing = missing_requests(answered, recorded)
    where = engine.url.render_as_string(hide_password=True)
    print(
        f"History ({where}): {len(answered):,} answered requests, "
        f"{int(answered['customers'].sum()):,} customers; "
        f"{len(answered) - len(missing):,} requests fully recorded, {len(missing):,} not."
    )
    return 1 if len(missing) else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
