"""`python -m history create-database` keeps what a database holds, unless told --empty; the
BI views and their export on PostgreSQL."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from history.settings import HistorySettings
from history.store import History
from tests.integration.conftest import POSTGRES_ADMIN_URL, fresh_postgres_database, run_checked
from tests.unit import test_bi as bi

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _create(url: str, *flags: str) -> str:
    command = [sys.executable, "-m", "history", "create-database", "--url", url, *flags]
    return run_checked(command, dict(os.environ)).stdout


def _outcomes(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM outcomes").fetchone()
        assert row is not None
        return int(row[0])


def test_a_database_keeps_its_rows_and_empty_starts_it_again() -> None:
    name = f"churn_test_{uuid.uuid4().hex[:10]}"
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        assert "created" in _create(url)
        with psycopg.connect(url) as db:
            db.execute(
                "INSERT INTO outcomes (customer_id, churned, observed_at)"
                " VALUES ('c1', true, now())"
            )
        assert "existed; up to date" in _create(url)
        assert _outcomes(url) == 1
        assert "created" in _create(url, "--empty")
        assert _outcomes(url) == 0
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.postgres
def test_the_bi_views_and_their_export_on_postgresql(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        history = bi.filled(History.open(HistorySettings(url=url)))
        bi.test_one_row_per_customer_with_its_latest_answered_decision_and_outcome(history)
        bi.test_daily_kpis_count_each_day_by_tier_segment_action_and_group(history)
        bi.test_the_views_are_exported_partitioned_by_day(history, tmp_path, "parquet")
