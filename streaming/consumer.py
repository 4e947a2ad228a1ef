"""The stream consumer: micro-batches of customer records in, one decision each out.

For each micro-batch, read once from the served-model holder (so no batch mixes versions):

1. each record is validated with `/predict`'s customer schema; one that fails goes to the
   dead-letter topic with its reason, and its neighbours go on;
2. the valid ones are scored with the runtime's batch path (serving/model/answers.py);
3. every decision is published to the output topic, keyed by customer id, with the event id and
   model version in headers, and the producer's acknowledgements are awaited;
4. the decisions go to the prediction history in one transaction with each partition's next
   offset (`stream_offsets`). After a crash the consumer starts where that transaction left
   off: every event is recorded once; the output topic may see an event again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from pydantic import BaseModel
from pydantic_core import to_json

from history.customer_ids import CustomerIds
from history.drift_counts import DriftCounter
from history.reader import stream_offsets
from history.records import ScoredBatch, rows_of
from history.sinks import OffsetMovedError, Sink, StreamOffset
from history.store import History
from serving.model.answers import decide
from serving.model.served import Served, ServedModel
from streaming import metrics
from streaming.publisher import Publisher
from streaming.records import EVENT_ID_HEADER, Event, customer_of
from streaming.settings import StreamSettings

log = logging.getLogger(__name__)
UNSCORABLE = "the model gives no finite score for this customer (a number too extreme to score)"
ERROR_HEADER_CHARS = 1000


@dataclass(frozen=True)
class Outcome:
    """What became of one micro-batch."""

    scored: int
    dead_lettered: int


class StreamConsumer:
    def __init__(
        self,
        settings: StreamSettings,
        served_model: ServedModel,
        customer_model: type[BaseModel],
        history: History | None,
        sink: Sink | None,
    ) -> None:
        self.settings = settings
        self.served_model = served_model
        self.customer_model = customer_model
        self.history = history
        self.sink = sink
        self.ids = CustomerIds.from_settings(settings.history)
        self.experiment = settings.experiment.experiment()
        # The next offset stored in the history per partition this consumer holds (None: none).
        self.stored: dict[TopicPartition, int | None] = {}
        self.consumer = AIOKafkaConsumer(
            group_id=settings.stream_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=settings.stream_max_record_bytes * 2,
            **kafka_options(settings),
        )
        self.producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=settings.stream_max_record_bytes * 2,
            max_batch_size=1024 * 1024,
            **kafka_options(settings),
        )
        self.publisher = Publisher(self.producer)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in hand is finished first."""
        await self.producer.start()
        try:
            self.consumer.subscribe([self.settings.stream_input_topic], listener=_Rebalance(self))
            await self.consumer.start()
            log.info(
                "Consuming %s as group %s with model %s version %s",
                self.settings.stream_input_topic,
                self.settings.stream_group,
                self.served_model.current.name,
                self.served_model.current.version,
            )
            while not stop.is_set():
                records = await self._next_batch(stop)
                if records:
                    await self.handle(records)
                await self._report_lag()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _next_batch(self, stop: asyncio.Event) -> list[Any]:
        """Up to CHURN_STREAM_MAX_BATCH records, or what came within CHURN_STREAM_MAX_WAIT_MS
        of the first one."""
        limit = self.settings.stream_max_batch
        records: list[Any] = []
        deadline: float | None = None
        while len(records) < limit and not stop.is_set():
            wait_ms = 500 if deadline is None else int((deadline - time.monotonic()) * 1000)
            if deadline is not None and wait_ms <= 0:
                break
            fetched = await self.consumer.getmany(
                timeout_ms=wait_ms, max_records=limit - len(records)
            )
            for partition_records in fetched.values():
                records.extend(partition_records)
            if records and deadline is None:
                deadline = time.monotonic() + self.settings.stream_max_wait_ms / 1000
            if not records:
                return records
        return records

    async def handle(self, records: Sequence[Any]) -> Outcome:
        started = time.perf_counter()
        served = self.served_model.current  # read once: the whole batch gets one version
        events = [Event.of(record) for record in records]
        limit = self.settings.stream_max_record_bytes
        parsed = [customer_of(event.value, self.customer_model, limit) for event in events]
        valid = [(event, customer) for event, customer in zip(events, parsed, strict=True)
                 if not isinstance(customer, str)]  # fmt: skip
        dead = [(event, reason) for event, reason in zip(events, parsed, strict=True)
                if isinstance(reason, str)]  # fmt: skip
        answers: list[dict[str, Any]] = []
        values: list[float] = []
        if valid:
            decided, decisions = decide(
                served, [customer for _, customer in valid], experiment=self.experiment
            )
            kept = []
            for (event, customer), answer, value in zip(
                valid, decided, decisions.customer_value.tolist(), strict=True
            ):
                if _finite(answer):
                    kept.append((event, customer))
                    answers.append(answer)
                    values.append(value)
                else:
                    dead.append((event, UNSCORABLE))
            valid = kept
        await self._publish(valid, answers, dead)
        offsets = self._offsets(records)
        try:
            await asyncio.to_thread(self._record, served, valid, answers, values, offsets)
        except OffsetMovedError as moved:
            log.warning("Another consumer took over (%s); re-reading where the group stands", moved)
            await self._seek_to_stored(list(self.stored))
            return Outcome(0, 0)
        for offset in offsets:
            self.stored[TopicPartition(offset.topic, offset.partition)] = offset.next_offset
        await self._commit(offsets)
        metrics.RECORDS.labels("scored").inc(len(valid))
        metrics.RECORDS.labels("dead_lettered").inc(len(dead))
        metrics.BATCH_RECORDS.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return Outcome(len(valid), len(dead))

    async def _publish(
        self,
        valid: Sequence[tuple[Event, BaseModel]],
        answers: Sequence[dict[str, Any]],
        dead: Sequence[tuple[Event, str]],
    ) -> None:
        """Every decision and dead letter sent, and acknowledged by the broker."""
        decisions = [
            (
                customer.encode() if (customer := answer["customer_id"]) is not None else event.key,
                to_json({**answer, "event_id": event.event_id}),
                [
                    (EVENT_ID_HEADER, event.event_id.encode()),
                    ("model-version", str(answer["model_version"]).encode()),
                ],
            )
            for (event, _), answer in zip(valid, answers, strict=True)
        ]
        keep = self.settings.stream_dead_letter_keep_bytes
        dead_letters = []
        for event, reason in dead:
            value = event.value or b""
            headers = [
                (EVENT_ID_HEADER, event.event_id.encode()),
                ("error", reason[:ERROR_HEADER_CHARS].encode()),
                ("source", f"{event.topic}/{event.partition}/{event.offset}".encode()),
            ]
            if len(value) > keep:
                headers.append(("truncated-from", str(len(value)).encode()))
            dead_letters.append((event.key, value[:keep], headers))
        await asyncio.gather(
            self.publisher.publish(self.settings.stream_output_topic, decisions),
            self.publisher.publish(self.settings.stream_dead_letter_topic, dead_letters),
        )

    def _offsets(self, records: Sequence[Any]) -> list[StreamOffset]:
        last: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            last[partition] = max(last.get(partition, -1), record.offset)
        return [
            StreamOffset(
                self.settings.stream_group,
                partition.topic,
                partition.partition,
                offset + 1,
                self.stored.get(partition),
            )
            for partition, offset in last.items()
        ]

    def _record(
        self,
        served: Served,
        valid: Sequence[tuple[Event, BaseModel]],
        answers: list[dict[str, Any]],
        values: list[float],
        offsets: Sequence[StreamOffset],
    ) -> None:
        """The decisions and the offsets after them, in one transaction."""
        if self.sink is None:
            return
        batch = ScoredBatch(
            datetime.now(UTC),
            "stream",
            served.name,
            answers,
            [customer for _, customer in valid],
            request_ids=[event.event_id for event, _ in valid],
            customer_values=values,
        )
        rows = rows_of(batch, self.ids, self.settings.history.feature_sample)
        reference = served.model.insight.reference
        counts = (
            DriftCounter(served.model.spec, reference, served.version).count(rows)
            if reference is not None and rows
            else []
        )
        self.sink.write(rows, counts, offsets)

    async def _commit(self, offsets: Sequence[StreamOffset]) -> None:
        """Kafka's own committed offsets follow the history's, for tools that read them; the
        history's are the ones a restart trusts."""
        try:
            await self.consumer.commit(
                {TopicPartition(o.topic, o.partition): o.next_offset for o in offsets}
            )
        except Exception as error:  # a rebalance in progress; the history holds the offsets
            log.info("Committing offsets to Kafka failed (%s); the history has them", error)

    async def _seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        """Go on from where the history says the group stands in each of `partitions`."""
        stored = (
            await asyncio.to_thread(stream_offsets, self.history.engine, self.settings.stream_group)
            if self.history is not None
            else {}
        )
        for partition in partitions:
            offset = stored.get((partition.topic, partition.partition))
            self.stored[partition] = offset
            if offset is not None:
                self.consumer.seek(partition, offset)

    async def _report_lag(self) -> None:
        for partition in self.consumer.assignment():
            highwater = self.consumer.highwater(partition)
            if highwater is None:
                continue
            position = self.stored.get(partition)
            if position is None:
                position = await self.consumer.position(partition)
            metrics.LAG.labels(partition.topic, str(partition.partition)).set(
                max(highwater - position, 0)
            )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stream: StreamConsumer) -> None:
        self.stream = stream

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for partition in revoked:
            self.stream.stored.pop(partition, None)
            metrics.LAG.remove(partition.topic, str(partition.partition))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.stream._seek_to_stored(list(assigned))


def kafka_options(settings: StreamSettings) -> dict[str, Any]:
    """Connection options, named as aiokafka names them."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.stream_bootstrap_servers,
        "security_protocol": settings.stream_security_protocol,
    }
    if settings.stream_sasl_mechanism is not None:
        password = settings.stream_sasl_password
        options |= {
            "sasl_mechanism": settings.stream_sasl_mechanism,
            "sasl_plain_username": settings.stream_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    if "SSL" in settings.stream_security_protocol:
        from aiokafka.helpers import create_ssl_context

        cafile = settings.stream_ssl_cafile
        options["ssl_context"] = create_ssl_context(cafile=str(cafile) if cafile else None)
    return options


def _finite(answer: dict[str, Any]) -> bool:
    return math.isfinite(answer["churn_probability"]) and math.isfinite(answer["expected_value"])
