"""The history tables: numbered SQL migrations, daily partitions and retention.

Migrations are plain SQL files in migrations/<dialect>/, applied in number order once each and
recorded in `schema_migrations`. Every worker may call `migrate` at start-up: a lock makes the
first one apply them and the others wait and find nothing left to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from history.database import is_postgres

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key shared by everything that changes the schema.
SCHEMA_LOCK = 0x63_68_75_72_6E
PARTITION_NAME = re.compile(r"predictions_(\d{8})")
CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)"
)


def migrate(engine: sa.Engine) -> list[str]:
    """Apply the migrations not yet applied; the names of those applied."""
    files = sorted((MIGRATIONS / engine.dialect.name).glob("[0-9][0-9][0-9]_*.sql"))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if is_postgres(engine):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        else:
            raw.driver_connection.isolation_level = None  # type: ignore[union-attr]
            cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(CREATE_LEDGER)
        cursor.execute("SELECT version FROM schema_migrations")
        applied = {row[0] for row in cursor.fetchall()}
        done = []
        for file in files:
            version = int(file.name[:3])
            if version in applied:
                continue
            for statement in _statements(file.read_text()):
                cursor.execute(statement)
            mark = "INSERT INTO schema_migrations VALUES (%s, %s, %s)"
            if not is_postgres(engine):
                mark = mark.replace("%s", "?")
            cursor.execute(mark, (version, file.stem, datetime.now(UTC).isoformat()))
            done.append(file.stem)
        if is_postgres(engine):
            raw.commit()
        else:
            cursor.execute("COMMIT")
    except BaseException:
        raw.rollback()
        raise
    finally:
        if not is_postgres(engine):
            raw.driver_connection.isolation_level = ""  # type: ignore[union-attr]
        raw.close()
    for name in done:
        log.info("Applied history migration %s", name)
    return done


def _statements(sql: str) -> list[str]:
    chunks = re.split(r";\s*$", sql, flags=re.MULTILINE)
    return [chunk.strip() for chunk in chunks if _has_code(chunk)]


def _has_code(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def create_partitions(connection: Any, days: Iterable[date]) -> None:
    """Make the daily partitions of `predictions` for `days` (PostgreSQL; a DBAPI connection)
    and commit."""
    cursor = connection.cursor()
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    for day in sorted(set(days)):
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS predictions_{day:%Y%m%d} PARTITION OF predictions "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00+00') "
            f"TO ('{(day + timedelta(days=1)).isoformat()} 00:00+00')"
        )
    connection.commit()


def prune(engine: sa.Engine, retention_days: int, today: date | None = None) -> int:
    """Drop predictions older than `retention_days`: whole partitions on PostgreSQL, rows on
    SQLite. How many partitions or rows went."""
    oldest_kept = (today or datetime.now(UTC).date()) - timedelta(days=retention_days)
    cutoff: object = datetime.combine(oldest_kept, datetime.min.time(), UTC)
    if not is_postgres(engine):
        cutoff = f"{oldest_kept.isoformat()}T00:00:00.000000Z"
    with engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM drift_counts WHERE bucket < :cutoff"), {"cutoff": cutoff}
        )
    if not is_postgres(engine):
        with engine.begin() as connection:
            deleted = connection.execute(
                sa.text("DELETE FROM predictions WHERE scored_at < :cutoff"), {"cutoff": cutoff}
            )
        return deleted.rowcount
    dropped = 0
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        partitions = connection.execute(
            sa.text(
                "SELECT child.relname FROM pg_inherits "
                "JOIN pg_class child ON child.oid = inhrelid "
                "WHERE inhparent = 'predictions'::regclass"
            )
        ).scalars()
        for name in partitions:
            match = PARTITION_NAME.fullmatch(name)
            if match and datetime.strptime(match[1], "%Y%m%d").date() < oldest_kept:
                connection.execute(sa.text(f'DROP TABLE "{name}"'))
                dropped += 1
    if dropped:
        log.info("Dropped %d day(s) of predictions older than %s", dropped, oldest_kept)
    return dropped
