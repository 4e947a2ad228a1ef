"""Each worker's copy of the key table, re-read often enough that a revoked key stops working
within `max_age_s`, and off the request path while traffic keeps it fresh."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from serving import metrics
from serving.access.key_store import KeyRecord, KeyStore

log = logging.getLogger(__name__)
# An unknown key id re-reads the table at most this often, so a key made a moment ago works
# at once and a stream of made-up ids costs one query a second.
MISS_REFRESH_S = 1.0
# How long a request waits for a re-read before it uses the copy it has, and for the first
# read before it is refused: a store that hangs, out of reach of its own timeouts (a stalled
# network, a paused server), then slows requests by this much once, not for good.
READ_WAIT_S = 1.0
FIRST_READ_WAIT_S = 10.0


class KeyStoreUnavailableError(Exception):
    """The key table could not be read even once: no key can be checked."""


class KeyCache:
    def __init__(
        self,
        store: KeyStore,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
        read_wait_s: float = READ_WAIT_S,
        first_read_wait_s: float = FIRST_READ_WAIT_S,
    ) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self.clock = clock
        self.read_wait_s = read_wait_s
        self.first_read_wait_s = first_read_wait_s
        self._keys: dict[str, KeyRecord] | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None
        self._used: set[str] = set()
        # After a failed read no other is tried before this: a store that is down is asked
        # once a cache period (once a second before any read worked), not once a request.
        self._retry_at = float("-inf")
        self._failing = False
        # The read under way has outlasted a request's wait: later requests do not wait on it.
        self._overdue = False

    async def get(self, key_id: str) -> KeyRecord | None:
        now = self.clock()
        age, may_read = now - self._read_at, now >= self._retry_at
        if self._keys is None:
            if not may_read:
                raise KeyStoreUnavailableError("the key table could not be read")
            await self._reread(must_succeed=True)
        elif age >= self.max_age_s and may_read:
            await self._reread(must_succeed=False)
        elif age >= self.max_age_s / 2 and self._reading is None and may_read:
            self._reading = asyncio.create_task(self._read())
            self._reading.add_done_callback(self._finished)
        assert self._keys is not None
        record = self._keys.get(key_id)
        if record is None and now - self._read_at >= MISS_REFRESH_S and now >= self._retry_at:
            await self._reread(must_succeed=False)
            record = self._keys.get(key_id)
        return record

    def prime(self) -> None:
        """Read the table now, as the worker starts: a worker whose first request comes while
        the store is down then still has a copy to check keys against."""
        try:
            self._keys = self.store.by_id()
        except Exception as error:
            log.warning(
                "Could not read the API key table as the worker started (%s); requests get a "
                "503 until it can be read.",
                error,
            )
            return
        self._read_at = self.clock()

    def note_used(self, key_id: str) -> None:
        """Recorded as the key's last use at the next read of the table."""
        self._used.add(key_id)

    async def _reread(self, must_succeed: bool) -> None:
        if self._reading is None:
            self._reading = asyncio.create_task(self._read())
            self._reading.add_done_callback(self._finished)
            self._overdue = False
        wait = (
            0.0 if self._overdue else self.first_read_wait_s if must_succeed else self.read_wait_s
        )
        try:
            await asyncio.wait_for(asyncio.shield(self._reading), wait)
        except TimeoutError as error:
            self._note_overdue()
            if must_succeed:
                raise KeyStoreUnavailableError("the key table did not answer") from error
        except Exception as error:
            if must_succeed:
                raise KeyStoreUnavailableError(str(error)) from error

    def _note_overdue(self) -> None:
        if self._overdue:
            return
        self._overdue = True
        metrics.count_key_store_error()
        if self._failing:
            return
        self._failing = True
        if self._keys is None:
            log.warning("The API key table did not answer; requests get a 503 until it does.")
        else:
            log.warning(
                "The API key table did not answer within %.0f s; using the copy read %.0f s "
                "ago until it does (churn_key_store_errors_total counts the failures).",
                self.read_wait_s,
                self.clock() - self._read_at,
            )

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._reading = None
        if task.cancelled() or task.exception() is None:
            return
        metrics.count_key_store_error()
        self._retry_at = self.clock() + (MISS_REFRESH_S if self._keys is None else self.max_age_s)
        if self._failing:
            return
        self._failing = True
        if self._keys is None:
            log.warning(
                "Could not read the API key table (%s); requests get a 503 until it can be "
                "read, tried again every %.0f s (churn_key_store_errors_total counts the "
                "failures).",
                task.exception(),
                MISS_REFRESH_S,
            )
        else:
            log.warning(
                "Could not read the API key table (%s); using the copy read %.0f s ago, and "
                "trying again every %.0f s (churn_key_store_errors_total counts the failures).",
                task.exception(),
                self.clock() - self._read_at,
                self.max_age_s,
            )

    async def _read(self) -> None:
        started = self.clock()
        used, self._used = self._used, set()
        try:
            self._keys = await asyncio.to_thread(self._read_and_mark, used)
        except Exception:
            self._used |= used
            raise
        self._read_at = started
        self._retry_at = float("-inf")
        if self._failing:
            self._failing = False
            log.info("The API key table is readable again.")

    def _read_and_mark(self, used: set[str]) -> dict[str, KeyRecord]:
        self.store.mark_used(used, datetime.now(UTC))
        return self.store.by_id()
