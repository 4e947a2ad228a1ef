"""Rate limits counted in customers, shared through one storage by several workers, failing open
when the storage does not answer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import limits
import pytest
from limits.aio.storage import MemoryStorage

from serving.access.limiter import Limiter, window_of

PER_MINUTE = limits.parse("100/minute")


def _charge(limiter: Limiter, cost: int, *items: limits.RateLimitItem) -> Any:
    return asyncio.run(limiter.charge("key", items or (PER_MINUTE,), cost))


def test_workers_sharing_a_storage_let_through_exactly_the_limit_between_them() -> None:
    async def run() -> int:
        storage = MemoryStorage()
        workers = [Limiter(storage, timeout_s=1), Limiter(storage, timeout_s=1)]
        allowed = 0
        for request in range(300):
            verdict = await workers[request % 2].charge("key", [PER_MINUTE], 1)
            allowed += verdict.allowed
        return allowed

    assert asyncio.run(run()) == 100


def test_a_request_costs_its_customers_and_a_refusal_says_when_to_retry() -> None:
    async def run() -> list[Any]:
        limiter = Limiter(MemoryStorage(), timeout_s=1)
        return [await limiter.charge("key", [PER_MINUTE], 60) for _ in range(2)]

    first, second = asyncio.run(run())
    assert first.allowed
    assert not second.allowed and not second.too_large
    assert second.limit is PER_MINUTE
    assert 0 < second.retry_after_s <= 60


def test_a_refusal_never_asks_to_wait_longer_than_the_window() -> None:
    class SlowClock(MemoryStorage):
        """A store whose window seems to end later than its length from the caller's `now`, as
        it does when the caller read the time before the round trips."""

        async def get_expiry(self, key: str) -> float:
            return await super().get_expiry(key) + 0.7

    async def run() -> list[Any]:
        limiter = Limiter(SlowClock(), timeout_s=1)
        return [await limiter.charge("key", [PER_MINUTE], 60) for _ in range(3)]

    _, refused, refused_again = asyncio.run(run())
    assert not refused.allowed and 59 < refused.retry_after_s <= 60
    assert not refused_again.allowed and refused_again.retry_after_s <= 60


def test_a_request_larger_than_a_whole_window_is_refused_as_too_large() -> None:
    verdict = _charge(Limiter(MemoryStorage(), timeout_s=1), 101)
    assert not verdict.allowed and verdict.too_large


def test_every_limit_must_pay_so_a_daily_quota_refuses_what_the_rate_would_allow() -> None:
    async def run() -> list[bool]:
        limiter = Limiter(MemoryStorage(), timeout_s=1)
        daily = limits.RateLimitItemPerDay(10)
        return [(await limiter.charge("key", [PER_MINUTE, daily], 4)).allowed for _ in range(3)]

    assert asyncio.run(run()) == [True, True, False]


def _seconds_to_utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).date() + timedelta(days=1)
    return datetime.combine(day, dt_time(), UTC).timestamp() - now


def test_a_spent_daily_quota_starts_again_at_midnight_utc_not_a_day_after_first_use() -> None:
    async def run() -> Any:
        limiter = Limiter(MemoryStorage(), timeout_s=1)
        daily = limits.RateLimitItemPerDay(10)
        assert (await limiter.charge("key", [daily], 10)).allowed
        return await limiter.charge("key", [daily], 1)

    refused = asyncio.run(run())
    assert not refused.allowed
    assert abs(refused.retry_after_s - _seconds_to_utc_midnight(time.time())) < 5


def test_a_daily_window_is_the_utc_day_and_other_windows_start_with_their_first_request() -> None:
    noon = datetime(2026, 12, 6, 12, tzinfo=UTC).timestamp()
    key, seconds = window_of("abc", limits.RateLimitItemPerDay(10), noon)
    assert key.endswith("/2026-12-06") and seconds == 12 * 3600
    key, seconds = window_of("abc", limits.RateLimitItemPerDay(10), noon + 12 * 3600)
    assert key.endswith("/2026-12-07") and seconds == 24 * 3600
    assert window_of("abc", PER_MINUTE, noon) == (PER_MINUTE.key_for("abc"), 60)


def test_different_keys_are_counted_apart() -> None:
    async def run() -> list[bool]:
        limiter = Limiter(MemoryStorage(), timeout_s=1)
        return [(await limiter.charge(key, [PER_MINUTE], 100)).allowed for key in ("a", "b", "a")]

    assert asyncio.run(run()) == [True, True, False]


class BrokenStorage(MemoryStorage):
    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.calls = 0

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        raise ConnectionError("storage is down")


@pytest.mark.parametrize("delay_s", [0.0, 5.0])
def test_a_storage_that_fails_or_hangs_lets_requests_through_and_is_left_alone_a_while(
    delay_s: float,
) -> None:
    storage = BrokenStorage(delay_s)
    limiter = Limiter(storage, timeout_s=0.05)

    async def run() -> list[bool]:
        return [(await limiter.charge("key", [PER_MINUTE], 100)).allowed for _ in range(5)]

    assert asyncio.run(run()) == [True] * 5
    assert storage.calls == 1


class RoundedTTLStorage:
    """Fixed windows on a fake clock, whose expiry is told in whole seconds as Redis's TTL is."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.counts: dict[str, tuple[int, float]] = {}

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        count, ends = self.counts.get(key, (0, 0.0))
        if self.clock[0] >= ends:
            count, ends = 0, self.clock[0] + expiry
        self.counts[key] = (count + amount, ends)
        return count + amount

    async def get_expiry(self, key: str) -> float:
        ends = self.counts[key][1]
        return self.clock[0] + max(round(ends - self.clock[0]), 0)


def _two_workers_on_a_rounding_store(clock: list[float]) -> list[Limiter]:
    storage = RoundedTTLStorage(clock)
    return [Limiter(storage, timeout_s=1, clock=lambda: clock[0]) for _ in range(2)]  # type: ignore[arg-type]


def test_a_per_second_limit_lets_through_traffic_under_it_when_the_store_rounds_its_expiry() -> (
    None
):
    """Two workers at 400 customers/s against 1000/second, for 5 s: none refused."""
    clock = [1000.0]
    workers = _two_workers_on_a_rounding_store(clock)
    per_second = limits.parse("1000/second")

    async def run() -> list[bool]:
        verdicts = []
        for request in range(1000):  # 2 customers every 5 ms
            clock[0] += 0.005
            verdict = await workers[request % 2].charge("key", [per_second], 2)
            verdicts.append(verdict.allowed)
        return verdicts

    assert all(asyncio.run(run()))


def test_a_per_second_limit_still_holds_when_the_store_rounds_its_expiry() -> None:
    """Two workers offering 4,000 customers/s against 1000/second: each second lets through
    at most the limit plus one lease (a fiftieth) per worker."""
    clock = [1000.0]
    workers = _two_workers_on_a_rounding_store(clock)
    per_second = limits.parse("1000/second")

    async def run() -> dict[int, int]:
        allowed: dict[int, int] = {}
        for request in range(1996):  # 10 customers every 2.5 ms, for just under 5 s
            clock[0] += 0.0025
            if (await workers[request % 2].charge("key", [per_second], 10)).allowed:
                second = int(clock[0] - 1000.0)
                allowed[second] = allowed.get(second, 0) + 10
        return allowed

    per_second_allowed = asyncio.run(run())
    assert max(per_second_allowed.values()) <= 1000 + 2 * 20
    assert min(per_second_allowed.values()) >= 900
