"""Records scored batches without making anyone wait: a bounded buffer and a writer thread.

`record` is the only call on the request path: one append under a lock. A thread takes what is
buffered every `flush_seconds`, makes the rows and hands them to the sink (PostgreSQL COPY or
SQLite). While the sink fails, the batch in hand is retried with back-off and new batches wait
in the buffer; past `buffer_rows`, new batches are dropped and counted. `close` writes what is
left, within a deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from history.customer_ids import CustomerIds
from history.drift_counts import DriftCount, DriftCounter
from history.records import Row, ScoredBatch, rows_of
from history.sinks import ROWS_PER_GIL_HOLD, Sink

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5.0


def _ignore(count: int) -> None:
    pass


@dataclass
class WriterEvents:
    """Hooks for metrics: rows written, rows dropped, failed writes."""

    written: Callable[[int], None] = _ignore
    dropped: Callable[[int], None] = _ignore
    failed: Callable[[int], None] = _ignore


@dataclass
class HistoryWriter:
    sink: Sink
    ids: CustomerIds = field(default_factory=CustomerIds)
    feature_sample: float = 0.0
    buffer_rows: int = 200_000
    batch_rows: int = 20_000
    flush_seconds: float = 0.5
    events: WriterEvents = field(default_factory=WriterEvents)
    # Run now and then by the writer thread, e.g. dropping days past retention.
    housekeeping: Callable[[], object] | None = None
    housekeeping_seconds: float = 3600.0
    # Counts the rows into the served model's drift bins, written with them.
    drift: DriftCounter | None = None

    def __post_init__(self) -> None:
        self._pending: deque[ScoredBatch] = deque()
        self._pending_rows = 0
        self._in_hand: list[Row] = []
        # Rows taken from the buffer and not yet written: counted from the moment they are
        # taken, while their rows are still being made outside the lock.
        self._held_rows = 0
        self._counts_in_hand: list[DriftCount] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0

    def record(self, batch: ScoredBatch) -> None:
        count = len(batch)
        with self._lock:
            # The batch being retried counts too: together they never pass `buffer_rows`.
            if self._pending_rows + self._held_rows + count > self.buffer_rows:
                full = True
            else:
                full = False
                self._pending.append(batch)
                self._pending_rows += count
        if full:
            self.events.dropped(count)

    @property
    def buffered_rows(self) -> int:
        return self._pending_rows + self._held_rows

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def close(self, deadline_seconds: float = 10.0) -> None:
        """Stop the thread and write what is left; what cannot be written in time is dropped
        and counted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(deadline_seconds)
            if self._thread.is_alive():
                self._leave_to_stuck_thread(deadline_seconds)
                return
        deadline = time.monotonic() + deadline_seconds
        while self.buffered_rows and time.monotonic() < deadline:
            if not self._write_some():
                time.sleep(0.2)
        left = self._drop_everything()
        if left:
            log.error("History: %d rows could not be written before shutdown and were lost", left)
        self.sink.close()

    def _leave_to_stuck_thread(self, waited: float) -> None:
        """The thread is stuck in a write. Writing its batch from here as well would store it
        twice, on the connection the thread is using, so that batch is left to it; the rows it
        has not taken are dropped and counted."""
        with self._lock:
            left = self._pending_rows
            self._pending.clear()
            self._pending_rows = 0
        if left:
            self.events.dropped(left)
        log.error("History: a write was still running %.0f s into shutdown; it is left to finish "
                  "on its own, and %d rows not yet taken were lost", waited, left)  # fmt: skip

    def flush(self) -> bool:
        """Write everything buffered now; False if the sink failed."""
        while self.buffered_rows:
            if not self._write_some():
                return False
        return True

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._housekeep()
            if self._write_some():
                failures = 0
                if self._pending_rows >= self.batch_rows:
                    continue
                self._stop.wait(self.flush_seconds)
            else:
                failures += 1
                self._stop.wait(min(MAX_BACKOFF_SECONDS, 0.25 * 2**failures))

    def _write_some(self) -> bool:
        """Write the batch in hand, or the next one from the buffer; False if the sink failed."""
        if not self._in_hand:
            self._in_hand = self._take()
            self._counts_in_hand = self._count(self._in_hand)
        if not self._in_hand:
            return True
        try:
            self.sink.write(self._in_hand, self._counts_in_hand)
        except Exception as error:
            log.warning("History: writing %d rows failed: %s", len(self._in_hand), error)
            self.events.failed(1)
            return False
        self.events.written(len(self._in_hand))
        with self._lock:
            self._in_hand, self._counts_in_hand = [], []
            self._held_rows = 0
        return True

    def _count(self, rows: list[Row]) -> list[DriftCount]:
        if self.drift is None or not rows:
            return []
        try:
            return self.drift.count(rows)
        except Exception as error:  # drift is a side line: the rows are written regardless
            log.warning("History: counting %d rows for drift failed: %s", len(rows), error)
            return []

    def _take(self) -> list[Row]:
        batches, count = [], 0
        with self._lock:
            while self._pending and count < self.batch_rows:
                batch = self._pending.popleft()
                self._pending_rows -= len(batch)
                batches.append(batch)
                count += len(batch)
            self._held_rows = count
        # Made outside the lock, and letting go of the GIL every ROWS_PER_GIL_HOLD rows, so
        # requests go on while the rows are made; not after every batch: a served batch is a
        # few rows, and each hand-over costs both threads a wake-up.
        rows: list[Row] = []
        held = 0
        for batch in batches:
            rows.extend(rows_of(batch, self.ids, self.feature_sample))
            held += len(batch)
            if held >= ROWS_PER_GIL_HOLD:
                time.sleep(0)
                held = 0
        return rows

    def _drop_everything(self) -> int:
        with self._lock:
            left = self._pending_rows + self._held_rows
            self._pending.clear()
            self._pending_rows = 0
            self._held_rows = 0
            self._in_hand, self._counts_in_hand = [], []
        if left:
            self.events.dropped(left)
        return left

    def _housekeep(self) -> None:
        if self.housekeeping is None:
            return
        now = time.monotonic()
        if self._last_housekeeping and now - self._last_housekeeping < self.housekeeping_seconds:
            return
        self._last_housekeeping = now
        try:
            self.housekeeping()
        except Exception as error:
            log.warning("History: housekeeping failed: %s", error)
