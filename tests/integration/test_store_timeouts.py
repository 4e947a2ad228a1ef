"""Stores that hang rather than refuse: the key store and the history's writer give up on a
statement after their timeout instead of holding their caller (against the real PostgreSQL)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from history.sinks import WRITE_TIMEOUT_S, PostgresSink
from serving.access.key_store import STATEMENT_TIMEOUT_S, KeyStore
from tests.integration.conftest import fresh_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_a_key_store_statement_that_hangs_is_cancelled_after_its_timeout() -> None:
    with fresh_postgres_database() as url:
        store = KeyStore(url)
        started = time.monotonic()
        with (
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            store.engine.connect() as connection,
        ):
            connection.execute(sa.text("SELECT pg_sleep(60)"))
        assert time.monotonic() - started < STATEMENT_TIMEOUT_S + 10
        store.engine.dispose()


def test_the_history_writers_connection_carries_its_statement_timeout() -> None:
    """A COPY that hangs is cancelled after WRITE_TIMEOUT_S, and the writer retries it."""
    with fresh_postgres_database() as url:
        sink = PostgresSink(sa.engine.make_url(url))
        shown = sink._connect().execute("SHOW statement_timeout").fetchone()
        sink.close()
    assert shown == (f"{WRITE_TIMEOUT_S // 60}min",)
