"""The Kafka broker the tests use (`make services`, or CHURN_TEST_KAFKA): records go in with
keys and headers and come out of a consumer group in order, and a committed offset holds."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import KAFKA_BOOTSTRAP

pytestmark = [pytest.mark.integration, pytest.mark.kafka]
Received = tuple[bytes | None, bytes | None, bytes, int]
RECORDS = [(f"customer-{n}".encode(), f'{{"tenure": {n}}}'.encode()) for n in range(5)]


async def produce(topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA_BOOTSTRAP, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for number, (key, value) in enumerate(RECORDS):
            await producer.send(topic, value, key=key, headers=[("event-id", str(number).encode())])
        await producer.flush()
    finally:
        await producer.stop()


async def consume(topic: str, group: str, count: int) -> list[Received]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=KAFKA_BOOTSTRAP,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[Received] = []
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2)
            for records in batches.values():
                received += [
                    (r.key, r.value, dict(r.headers)["event-id"], r.offset) for r in records
                ]
            await consumer.commit()
        return received
    finally:
        await consumer.stop()


async def committed(topic: str, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA_BOOTSTRAP, group_id=group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        await consumer.stop()


async def round_trip(topic: str, group: str) -> tuple[list[Received], int | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    await produce(topic)
    received = await asyncio.wait_for(consume(topic, group, len(RECORDS)), timeout=60)
    return received, await committed(topic, group)


def test_records_round_trip_through_a_consumer_group_and_its_offset_is_committed() -> None:
    topic, group = f"test-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"

    received, offset = asyncio.run(round_trip(topic, group))

    assert received == [
        (key, value, str(number).encode(), number) for number, (key, value) in enumerate(RECORDS)
    ]
    assert offset == len(RECORDS)
