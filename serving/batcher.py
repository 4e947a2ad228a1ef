"""Adaptive batching without waiting: whatever has queued is scored as soon as the scorer is free.

Batches grow with the load on their own: one request at a time when idle, everything that
arrived during the previous batch when busy. Nothing is held back to fill a batch, because a
batch costs milliseconds and holding requests only adds latency; BentoML's `CorkDispatcher`,
which learns how long to hold them, held them ever longer as load rose.

A batch is scored on the event loop itself, not in a thread: the model's work holds the GIL
anyway, and a scoring thread only takes turns with the loop.

A request that has already waited longer than the latency budget, less the time a batch takes,
is shed with `OverloadedError` and never scored, so the service does not queue without bound.
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
# How fast the estimate of a batch's duration follows the latest batch.
SMOOTHING = 0.2


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
        self.batch_seconds = 0.0  # smoothed duration of recent batches
        self._queue: deque[_Waiting[Item, Answer]] = deque()
        self._draining = False

    async def __call__(self, item: Item) -> Answer:
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(item, self.size(item), time.monotonic(), answer))
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
                started = time.monotonic()
                try:
                    answers = self.score([w.item for w in batch])
                except Exception as error:  # every request of the batch gets the failure
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(error)
                else:
                    elapsed = time.monotonic() - started
                    self.batch_seconds += SMOOTHING * (elapsed - self.batch_seconds)
                    for waiting, answer in zip(batch, answers, strict=True):
                        if not waiting.answer.done():
                            waiting.answer.set_result(answer)
                await asyncio.sleep(0)  # let the loop read the requests that came meanwhile
        finally:
            self._draining = False

    def _shed_late(self) -> None:
        deadline = time.monotonic() - (self.max_latency_s - self.batch_seconds)
        while self._queue and self._queue[0].since < deadline:
            waiting = self._queue.popleft()
            if not waiting.answer.done():
                waiting.answer.set_exception(OverloadedError())

    def _next_batch(self) -> list[_Waiting[Item, Answer]]:
        """Queued requests in arrival order up to `max_batch_size` customers; a request is
        never split, and one bigger than the limit goes alone."""
        batch: list[_Waiting[Item, Answer]] = []
        customers = 0
        while self._queue and (not batch or customers + self._queue[0].size <= self.max_batch_size):
            waiting = self._queue.popleft()
            if waiting.answer.cancelled():
                continue
            batch.append(waiting)
            customers += waiting.size
        return batch
