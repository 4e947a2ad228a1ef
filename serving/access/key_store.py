"""Where API keys live: an embedded SQLite file by default, PostgreSQL for a team and replicas."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import limits
import sqlalchemy as sa

from churn.errors import UserError
from history.database import engine_for
from serving.access.api_keys import SCOPES, Scope, issue

METADATA = sa.MetaData()
API_KEYS = sa.Table(
    "churn_api_keys",
    METADATA,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("rate", sa.String(100), nullable=False),
    sa.Column("daily_customers", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    digest: str
    scopes: tuple[Scope, ...]
    rate: str
    daily_customers: int | None
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    token: str


def check_rate(rate: str) -> str:
    """A rate as the `limits` library reads it (`100/second`, `6000/minute`); UserError if not."""
    try:
        limits.parse(rate)
    except ValueError:
        raise UserError(
            f"--rate: {rate!r} is not a rate; write it like 100/second or 5000/minute."
        ) from None
    return rate


# The key table is small: a read that takes longer is a database in trouble, and the service's
# key cache keeps serving the copy it last read.
STATEMENT_TIMEOUT_S = 5


class KeyStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url, STATEMENT_TIMEOUT_S)
        self.url = self.engine.url
        self._created = False

    def _connect(self) -> sa.Connection:
        if not self._created:
            METADATA.create_all(self.engine)
            self._created = True
        return self.engine.begin()  # type: ignore[return-value]

    def create(
        self,
        name: str,
        scopes: Collection[Scope],
        rate: str,
        daily_customers: int | None,
        pepper: bytes,
        replace: bool = False,
    ) -> NewKey:
        """Store a new key and return its token, which is never stored or shown again. With
        `replace`, a live key of the same name is revoked first."""
        if not name.strip():
            raise UserError("--name: a key needs a name, for metrics and for revoking it.")
        issued = issue(pepper)
        now = datetime.now(UTC)
        record = KeyRecord(
            key_id=issued.key_id,
            name=name,
            digest=issued.digest,
            scopes=tuple(scope for scope in SCOPES if scope in scopes),
            rate=check_rate(rate),
            daily_customers=daily_customers,
            created_at=now,
        )
        with self._connect() as connection:
            live = _live_named(connection, name)
            if live and not replace:
                raise UserError(
                    f"A live key named {name!r} exists; revoke it first "
                    "(`python -m serving keys revoke NAME`) or pass --replace."
                )
            if live:
                connection.execute(_revoke(name, now))
            connection.execute(
                API_KEYS.insert().values(
                    key_id=record.key_id,
                    name=record.name,
                    digest=record.digest,
                    scopes=",".join(record.scopes),
                    rate=record.rate,
                    daily_customers=record.daily_customers,
                    created_at=record.created_at,
                )
            )
        return NewKey(record, issued.token)

    def revoke(self, name: str) -> None:
        with self._connect() as connection:
            if not _live_named(connection, name):
                raise UserError(f"No live key named {name!r}; `keys list` shows them all.")
            connection.execute(_revoke(name, datetime.now(UTC)))

    def records(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(API_KEYS.select().order_by(API_KEYS.c.created_at))
            return [_record(row) for row in rows]

    def by_id(self) -> dict[str, KeyRecord]:
        return {record.key_id: record for record in self.records()}

    def mark_used(self, key_ids: Collection[str], when: datetime) -> None:
        if not key_ids:
            return
        with self._connect() as connection:
            connection.execute(
                API_KEYS.update()
                .where(API_KEYS.c.key_id.in_(sorted(key_ids)))
                .values(last_used_at=when)
            )


def _live_named(connection: sa.Connection, name: str) -> bool:
    query = sa.select(API_KEYS.c.key_id).where(
        API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None)
    )
    return connection.execute(query).first() is not None


def _revoke(name: str, when: datetime) -> sa.Update:
    return (
        API_KEYS.update()
        .where(API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None))
        .values(revoked_at=when)
    )


def _record(row: sa.Row) -> KeyRecord:  # type: ignore[type-arg]
    return KeyRecord(
        key_id=row.key_id,
        name=row.name,
        digest=row.digest,
        scopes=tuple(scope for scope in SCOPES if scope in row.scopes.split(",")),
        rate=row.rate,
        daily_customers=row.daily_customers,
        created_at=_utc(row.created_at),
        last_used_at=None if row.last_used_at is None else _utc(row.last_used_at),
        revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
    )


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes, all stored as UTC; PostgreSQL, its session's zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
