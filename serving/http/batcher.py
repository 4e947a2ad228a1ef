"""Adaptive batching without waiting: whatever has queued is scored as soon as the scorer is free.

Batches grow with the load on their own: one request at a time when idle, everything that
arrived during the previous batch when busy. Nothing is held back to fill a batch, because a
batch costs milliseconds and holding requests only adds latency; BentoML's `CorkDispatcher`,
which learns how long to hold them, held them ever longer as load rose.

A batch is scored on the event loop itself, not in a thread: the model's work holds the GIL
anyway, and a scoring thread only takes turns with the loop.

When more customers are queued than one batch takes, the requests at the head that have already
waited longer than the latency budget are shed with `OverloadedError` and never scored, so the
service does not queue without bound. Shedding looks only at how long requests have really
waited: a queue that one batch clears is always scored, so a worker recovers as soon as load
falls, whatever a stall before cost.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class OverloadedError(Exception):
    """The request would have waited longer than the latency budget; it was not scored."""


@dataclass
class _Waiting(Generic[Item, Answer]):
    item: Item
    size: int
    since: float
    answer: asyncio.Future[Answer]


class Batcher(Generic[Item, Answer]):
    def __init__(
        self,
        score: Callable[[Sequence[Item]], list[Answer]],
        size: Callable[[Item], int],
        max_batch_size: int,
        max_latency_ms: int,
    ) -> None:
        self.score = score
        self.size = size
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000
        self._queued_customers = 0
        self._queue: deque[_Waiting[Item, Answer]] = deque()
        self._draining = False

    async def __call__(self, item: Item) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(item, self.size(item), time.monotonic(), answer)
        self._queue.append(waiting)
        self._queued_customers += waiting.size
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._queue:
                self._shed_late()
                batch = self._next_batch()
                if not batch:
                    continue
                try:
                    answers = self.score([w.item for w in batch])
                except Exception as error:  # every request of the batch gets the failure
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(error)
                else:
                    for waiting, answer in zip(batch, answers, strict=True):
                        if not waiting.answer.done():
                            waiting.answer.set_result(answer)
                await asyncio.sleep(0)  # let the loop read the requests that came meanwhile
        finally:
            self._draining = False

    def _shed_late(self) -> None:
        deadline = time.monotonic() - self.max_latency_s
        while (
            self._queued_customers > self.max_batch_size
            and self._queue
            and self._queue[0].since < deadline
        ):
            waiting = self._pop()
            if not waiting.answer.done():
                waiting.answer.set_exception(OverloadedError())

    def _pop(self) -> _Waiting[Item, Answer]:
        waiting = self._queue.popleft()
        self._queued_customers -= waiting.size
        return waiting

    def _next_batch(self) -> list[_Waiting[Item, Answer]]:
        """Queued requests in arrival order up to `max_batch_size` customers; a request is
        never split, and one bigger than the limit goes alone."""
        batch: list[_Waiting[Item, Answer]] = []
        customers = 0
        while self._queue and (not batch or customers + self._queue[0].size <= self.max_batch_size):
            waiting = self._pop()
            if waiting.answer.cancelled():
                continue
            batch.append(waiting)
            customers += waiting.size
        return batch
