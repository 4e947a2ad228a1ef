"""`python -m history create-database` keeps what a database holds, unless told --empty."""

from __future__ import annotations

import os
import sys
import uuid

import psycopg
import pytest

from tests.integration.conftest import POSTGRES_ADMIN_URL, run_checked

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
