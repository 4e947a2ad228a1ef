"""SQLAlchemy engines for the product's own tables: an SQLite file or PostgreSQL via psycopg 3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import sqlalchemy as sa

# What a database that is missing, unreachable or misnamed raises: SQLAlchemy's errors, and the
# drivers' own where a raw connection is used.
DATABASE_ERRORS = (sa.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error)


def engine_for(url: str) -> sa.Engine:
    """An engine for `url`; an SQLite file's folder is made, and postgresql:// uses psycopg 3,
    the driver installed."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(parsed, connect_args={"timeout": 30})
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=4)


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"
