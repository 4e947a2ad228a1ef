"""Publishing a micro-batch's records at once: one batch per partition, not one send each.

aiokafka's per-record `send` costs about 40 µs of CPU (a future, a partition lookup, an append
to its accumulator), more than scoring the customer. Here each record goes to the partition
Kafka's default partitioner gives its key (murmur2, as the Java client), into one
`BatchBuilder` per partition, and the batches are sent together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

# key, value, headers
Record = tuple[bytes | None, bytes, Sequence[tuple[str, bytes]]]


class Publisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitioner = DefaultPartitioner()

    async def publish(self, topic: str, records: Iterable[Record]) -> None:
        """Every record sent and acknowledged by the broker (or an error raised)."""
        partitions = sorted(await self.producer.partitions_for(topic))
        open_batches: dict[int, Any] = {}
        sent = []
        for key, value, headers in records:
            partition = self.partitioner(key, partitions, partitions)
            batch = open_batches.get(partition)
            if batch is None:
                batch = open_batches[partition] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sent.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[partition] = self.producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for partition, batch in open_batches.items():
            sent.append(await self.producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
