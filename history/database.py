"""SQLAlchemy engines for the product's own tables: an SQLite file or PostgreSQL via psycopg 3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import sqlalchemy as sa

# What a database that is missing, unreachable or misnamed raises: SQLAlchemy's errors, and the
# drivers' own where a raw connection is used.
DATABASE_ERRORS = (sa.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error)


# A PostgreSQL server that does not answer is given up on after this, not the system's minutes.
CONNECT_TIMEOUT_S = 5


def engine_for(url: str, statement_timeout_s: float | None = None) -> sa.Engine:
    """An engine for `url`; an SQLite file's folder is made, and postgresql:// uses psycopg 3,
    the driver installed, with a connect timeout and, if given, a statement timeout: a
    database that hangs rather than refuses then fails a caller's query instead of holding
    it."""
    parsed = sa.engine.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(parsed, connect_args={"timeout": 30})
    connect_args: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if statement_timeout_s is not None:
        connect_args["options"] = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=4, connect_args=connect_args)


def is_postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"
