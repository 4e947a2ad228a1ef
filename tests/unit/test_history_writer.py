"""The history writer: nothing on the request path waits, nothing is lost silently."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from history.customer_ids import CustomerIds
from history.drift_counts import DriftCount
from history.records import COLUMNS, Row, ScoredBatch, rows_of
from history.writer import HistoryWriter, WriterEvents


class Sink:
    """Keeps the rows it is given; fails while `down`."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.counts: list[DriftCount] = []
        self.down = False
        self.closed = False

    def write(self, rows: Sequence[Row], counts: Sequence[DriftCount] = ()) -> None:
        if self.down:
            raise ConnectionError("database is down")
        self.rows.extend(rows)
        self.counts.extend(counts)

    def close(self) -> None:
        self.closed = True


class Counts:
    def __init__(self) -> None:
        self.written = self.dropped = self.failed = 0

    def events(self) -> WriterEvents:
        def add(name: str) -> Any:
            return lambda count: setattr(self, name, getattr(self, name) + count)

        return WriterEvents(add("written"), add("dropped"), add("failed"))


def _batch(first: int, count: int, **fields: Any) -> ScoredBatch:
    predictions = [
        {
            "customer_id": f"c{n}",
            "churn_probability": n / 1000,
            "churn": n % 2 == 0,
            "risk_tier": "high",
            "decile": 1,
            "segment": "s",
            "action": "call",
            "expected_value": 1.0,
            "model_version": "3",
        }
        for n in range(first, first + count)
    ]
    inputs = [{"tenure": n} for n in range(first, first + count)]
    return ScoredBatch(datetime.now(UTC), "api", "churn", predictions, inputs, **fields)


def test_rows_carry_the_answer_request_and_client_in_column_order() -> None:
    batch = _batch(0, 2, request_ids=["r1", "r2"], clients=["crm", "crm"])
    rows = rows_of(batch, CustomerIds(), feature_sample=1.0)
    first = dict(zip(COLUMNS, rows[0], strict=True))
    assert first["customer_id"] == "c0" and first["request_id"] == "r1"
    assert first["client"] == "crm" and first["model_version"] == "3"
    assert first["source"] == "api" and first["features"] == {"tenure": 0}


@pytest.mark.parametrize(("sample", "kept"), [(0.0, 0), (1.0, 1000)])
def test_features_are_kept_for_the_sampled_share_only(sample: float, kept: int) -> None:
    rows = rows_of(_batch(0, 1000), CustomerIds(), sample)
    assert sum(row[COLUMNS.index("features")] is not None for row in rows) == kept


def test_hashed_ids_are_stable_salted_and_never_the_raw_id() -> None:
    rows = rows_of(_batch(0, 1), CustomerIds(b"salt"), 0.0)
    stored = rows[0][COLUMNS.index("customer_id")]
    assert stored != "c0" and len(stored) == 64
    assert stored == CustomerIds(b"salt").stored("c0") != CustomerIds(b"pepper").stored("c0")


def test_everything_recorded_is_written_in_order_and_counted() -> None:
    sink, counts = Sink(), Counts()
    writer = HistoryWriter(sink, batch_rows=25, events=counts.events())
    for first in range(0, 100, 10):
        writer.record(_batch(first, 10))
    assert writer.flush()
    assert [row[COLUMNS.index("customer_id")] for row in sink.rows] == [f"c{n}" for n in range(100)]
    assert counts.written == 100 and counts.dropped == 0


def test_while_the_database_is_down_rows_wait_up_to_the_buffer_then_are_dropped_and_counted() -> (
    None
):
    sink, counts = Sink(), Counts()
    writer = HistoryWriter(sink, buffer_rows=50, batch_rows=10, events=counts.events())
    sink.down = True
    for first in range(0, 100, 10):
        writer.record(_batch(first, 10))
    assert counts.dropped == 50
    assert not writer.flush() and counts.failed == 1
    sink.down = False
    assert writer.flush()
    assert len(sink.rows) == counts.written == 50
    assert counts.written + counts.dropped == 100


def test_rows_being_made_count_against_the_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that arrives while the writer makes rows outside the lock sees them as held."""
    sink, counts = Sink(), Counts()
    writer = HistoryWriter(sink, buffer_rows=20, batch_rows=20, events=counts.events())

    def rows_while_a_request_arrives(batch: ScoredBatch, *args: Any) -> list[Row]:
        writer.record(_batch(100, 10))
        return rows_of(batch, *args)

    writer.record(_batch(0, 20))
    monkeypatch.setattr("history.writer.rows_of", rows_while_a_request_arrives)
    sink.down = True
    assert not writer.flush()
    assert counts.dropped == 10 and writer.buffered_rows == 20


def test_close_writes_what_is_buffered_and_counts_what_it_cannot() -> None:
    sink, counts = Sink(), Counts()
    writer = HistoryWriter(sink, flush_seconds=60, events=counts.events())
    writer.start()
    writer.record(_batch(0, 30))
    writer.close()
    assert len(sink.rows) == 30 and sink.closed

    down, counts = Sink(), Counts()
    down.down = True
    writer = HistoryWriter(down, flush_seconds=60, events=counts.events())
    writer.record(_batch(0, 30))
    writer.close(deadline_seconds=0.5)
    assert counts.dropped == 30 and writer.buffered_rows == 0


def test_a_write_stuck_past_the_deadline_is_not_written_a_second_time_at_close() -> None:
    class StuckSink(Sink):
        def __init__(self) -> None:
            super().__init__()
            self.writing, self.release = threading.Event(), threading.Event()

        def write(self, rows: Sequence[Row], counts: Sequence[DriftCount] = ()) -> None:
            self.writing.set()
            self.release.wait(10)
            super().write(rows, counts)

    sink, counts = StuckSink(), Counts()
    writer = HistoryWriter(sink, flush_seconds=0.01, events=counts.events())
    writer.start()
    writer.record(_batch(0, 30))
    assert sink.writing.wait(5)
    writer.record(_batch(30, 10))
    writer.close(deadline_seconds=0.3)
    sink.release.set()
    assert writer._thread is not None
    writer._thread.join(5)
    assert [row[COLUMNS.index("customer_id")] for row in sink.rows] == [f"c{n}" for n in range(30)]
    assert counts.dropped == 10 and counts.written == 30


class Deciles:
    """A drift counter that counts each row's decile."""

    def count(self, rows: Sequence[Row]) -> list[DriftCount]:
        deciles = [row[COLUMNS.index("decile")] for row in rows]
        at = rows[0][COLUMNS.index("scored_at")]
        return [
            DriftCount(at, "1", "__prediction__", d - 1, deciles.count(d)) for d in set(deciles)
        ]


def test_drift_counts_go_with_their_rows_and_are_kept_while_the_database_is_down() -> None:
    sink = Sink()
    writer = HistoryWriter(sink, batch_rows=10, drift=Deciles())  # type: ignore[arg-type]
    sink.down = True
    writer.record(_batch(0, 10))
    assert not writer.flush()
    sink.down = False
    assert writer.flush()
    assert len(sink.rows) == 10
    assert sum(count.rows for count in sink.counts) == 10
