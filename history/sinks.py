"""Where the writer's rows go: PostgreSQL with binary COPY, or an SQLite file."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from history.database import CONNECT_TIMEOUT_S, is_postgres
from history.drift_counts import DriftCount
from history.records import COLUMNS, Row
from history.schema import create_partitions

COPY = f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
COPY_TYPES = (
    "timestamptz", "text", "text", "text", "text", "text", "text",
    "float8", "bool", "text", "int2", "text", "text", "float8", "float8", "jsonb", "jsonb",
    "text", "bool", "text", "text", "text",
)  # fmt: skip
# A batch is written in well under a second; one that takes this long is a database that hangs,
# and the writer retries it with back-off while new rows wait in its buffer.
WRITE_TIMEOUT_S = 60
# The writer shares a worker's GIL with its event loop: it lets go this often, so a request
# never waits behind a whole batch being written.
ROWS_PER_GIL_HOLD = 200
REASONS, FEATURES = COLUMNS.index("reasons"), COLUMNS.index("features")
INSERT = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
ADD_COUNTS = (
    "INSERT INTO drift_counts (bucket, model_version, feature, bin, rows) VALUES ({marks}) "
    "ON CONFLICT (bucket, model_version, feature, bin) "
    "DO UPDATE SET rows = drift_counts.rows + excluded.rows"
)

# Moves a partition's offset only from where the writer last saw it (nowhere: no row yet), so
# a consumer that lost the partition to another in a rebalance cannot record its rows twice.
MOVE_OFFSET = (
    "INSERT INTO stream_offsets (consumer_group, topic, partition, next_offset) "
    "VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (consumer_group, topic, partition) "
    "DO UPDATE SET next_offset = excluded.next_offset WHERE stream_offsets.next_offset = {mark}"
)


class StreamOffset(NamedTuple):
    """Where a stream consumer group goes on in a partition once these rows are stored, and
    where it stood when the rows were read (None: nothing stored yet)."""

    consumer_group: str
    topic: str
    partition: int
    next_offset: int
    expected: int | None


class OffsetMovedError(Exception):
    """Another consumer moved a partition's offset first; nothing of the batch was stored."""


def _move_offsets(cursor: Any, mark: str, offsets: Sequence[StreamOffset]) -> None:
    for offset in offsets:
        cursor.execute(MOVE_OFFSET.format(mark=mark), offset)
        if cursor.rowcount != 1:
            raise OffsetMovedError(
                f"{offset.topic} partition {offset.partition} is no longer at {offset.expected}"
            )


class Sink(Protocol):
    def write(
        self,
        rows: Sequence[Row],
        counts: Sequence[DriftCount] = (),
        offsets: Sequence[StreamOffset] = (),
    ) -> None:
        """Store every row, add the drift counts and move the stream offsets, in one
        transaction or raise; after an error the next call starts afresh."""

    def close(self) -> None: ...


def sink_for(engine: sa.Engine) -> Sink:
    return PostgresSink(engine.url) if is_postgres(engine) else SqliteSink(engine.url)


def sqlite_time(moment: datetime) -> str:
    """UTC text that sorts as it compares, the form the SQLite tables hold."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PostgresSink:
    def __init__(self, url: sa.URL) -> None:
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._days_made: set[object] = set()

    def write(
        self,
        rows: Sequence[Row],
        counts: Sequence[DriftCount] = (),
        offsets: Sequence[StreamOffset] = (),
    ) -> None:
        try:
            connection = self._connect()
            days = {row[0].date() for row in rows} - self._days_made
            if days:
                create_partitions(connection, days)
                self._days_made |= days
            with connection.cursor().copy(COPY) as copy:
                copy.set_types(COPY_TYPES)
                for index, row in enumerate(rows, start=1):
                    copy.write_row(_jsonb(row))
                    if index % ROWS_PER_GIL_HOLD == 0:
                        time.sleep(0)
            if counts:
                connection.cursor().executemany(
                    ADD_COUNTS.format(marks=", ".join(["%s"] * 5)), counts
                )
            _move_offsets(connection.cursor(), "%s", offsets)
            connection.commit()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._connection is None:
            self._connection = psycopg.connect(
                self.conninfo,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={WRITE_TIMEOUT_S * 1000}",
            )
            self._days_made.clear()
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _jsonb(row: Row) -> Row:
    reasons, features = row[REASONS], row[FEATURES]
    if reasons is None and features is None:
        return row
    return (
        *row[:REASONS],
        None if reasons is None else Jsonb(reasons),
        None if features is None else Jsonb(features),
        *row[FEATURES + 1 :],
    )


class SqliteSink:
    def __init__(self, url: sa.URL) -> None:
        self.path = url.database or ":memory:"
        self._connection: sqlite3.Connection | None = None

    def write(
        self,
        rows: Sequence[Row],
        counts: Sequence[DriftCount] = (),
        offsets: Sequence[StreamOffset] = (),
    ) -> None:
        try:
            connection = self._connect()
            with connection:
                connection.executemany(INSERT, [_sqlite_row(row) for row in rows])
                connection.executemany(
                    ADD_COUNTS.format(marks=", ".join("?" * 5)),
                    [(sqlite_time(c.bucket), *c[1:]) for c in counts],
                )
                _move_offsets(connection.cursor(), "?", offsets)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _sqlite_row(row: Row) -> Row:
    reasons, features = row[REASONS], row[FEATURES]
    return (
        sqlite_time(row[0]),
        *row[1:REASONS],
        None if reasons is None else json.dumps(reasons),
        None if features is None else json.dumps(features),
        *row[FEATURES + 1 :],
    )
