"""The batcher recovers from a slow batch: shedding looks at how long requests really waited."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence

from serving.http.batcher import Batcher, OverloadedError


def len_one(item: int) -> int:
    return 1


class SlowFirstBatch:
    """The first batch stalls (a VM pause, swap); every later one is instant."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.batches: list[list[int]] = []

    def __call__(self, items: Sequence[int]) -> list[int]:
        if not self.batches:
            time.sleep(self.stall_s)
        self.batches.append(list(items))
        return [2 * item for item in items]


def test_one_slow_batch_does_not_make_an_idle_worker_shed_what_comes_after() -> None:
    scorer = SlowFirstBatch(stall_s=0.6)
    batcher: Batcher[int, int] = Batcher(scorer, len_one, max_batch_size=100, max_latency_ms=100)

    async def replay() -> list[int | str]:
        answers: list[int | str] = [await batcher(0)]
        for item in range(1, 6):
            await asyncio.sleep(0.2)
            try:
                answers.append(await batcher(item))
            except OverloadedError:
                answers.append("shed")
        return answers

    assert asyncio.run(replay()) == [0, 2, 4, 6, 8, 10]
    assert scorer.batches == [[0], [1], [2], [3], [4], [5]]


def test_a_short_queue_is_scored_even_when_it_waited_past_the_budget() -> None:
    scorer = SlowFirstBatch(stall_s=0.0)
    batcher: Batcher[int, int] = Batcher(scorer, len_one, max_batch_size=100, max_latency_ms=100)

    async def after_a_stall() -> list[int]:
        queued = [asyncio.create_task(batcher(n)) for n in range(4)]
        await asyncio.sleep(0)  # all four are queued; the batcher has not run yet
        time.sleep(0.3)  # the whole worker stalls
        return [await task for task in queued]

    assert asyncio.run(after_a_stall()) == [0, 2, 4, 6]


def test_a_long_queue_sheds_only_requests_that_waited_past_the_budget() -> None:
    queued = 250

    def slow(items: Sequence[int]) -> list[int]:
        time.sleep(0.02)
        return [2 * item for item in items]

    batcher: Batcher[int, int] = Batcher(slow, len_one, max_batch_size=10, max_latency_ms=100)

    async def burst() -> list[int | str]:
        async def one(item: int) -> int | str:
            try:
                return await batcher(item)
            except OverloadedError:
                return "shed"

        return list(await asyncio.gather(*(one(n) for n in range(queued))))

    # A full collection of a large heap mid-burst would stall the loop past the 100 ms budget.
    gc.collect()
    gc.disable()
    try:
        answers = asyncio.run(burst())
    finally:
        gc.enable()
    answered = [n for n, answer in enumerate(answers) if answer != "shed"]
    assert answered[:10] == list(range(10)), "the head of the queue is scored first"
    assert "shed" in answers
    assert all(answers[n] == 2 * n for n in answered)
