"""Rate limits and daily quotas, counted in customers, shared by every worker and replica.

The counts live in a `limits` storage (Redis in production) as fixed windows. A worker does not
ask it on every request: it takes a lease of a fiftieth of a window's allowance at a time and
spends that locally, so a burst of small requests costs one round trip per lease. What a
worker leased and did not spend lapses with the window; leases make a limit strict to within a
fiftieth of it per worker.

If the storage does not answer within the timeout, requests go through uncounted (fail open)
for a few seconds, and each one is counted in `churn_rate_limit_fail_open_total`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

from limits import RateLimitItem, RateLimitItemPerDay
from limits.aio.storage import Storage
from limits.storage import storage_from_string

from serving import metrics

log = logging.getLogger(__name__)
LEASE_FRACTION = 1 / 50
# After the storage fails, how long requests go through before it is tried again.
FAIL_OPEN_S = 5.0
# Redis gives a key's time to live in whole seconds, rounded, so a window ends up to this long
# before or after the time it reports. Leased tokens are kept till the latest end (dropping
# them early would, under a per-second limit, waste a lease on every other request); a refusal
# lasts till the earliest.
EXPIRY_ROUNDING_S = 0.5


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: RateLimitItem | None = None
    retry_after_s: float = 0.0
    # The request alone costs more than the limit allows in a whole window.
    too_large: bool = False


ALLOWED = Verdict(True)


@dataclass
class _Lease:
    tokens: int = 0
    window_ends: float = 0.0
    denied_until: float = 0.0


@dataclass
class Limiter:
    storage: Storage
    timeout_s: float
    clock: Callable[[], float] = time.time
    _leases: dict[tuple[str, RateLimitItem], _Lease] = field(default_factory=dict)
    _failed_until: float = 0.0

    @classmethod
    def connect(cls, uri: str, timeout_s: float) -> Limiter:
        """`memory://`, or `redis://host:port[/db]` (also `rediss://`) for a shared count."""
        async_uri = uri if uri.startswith("async+") else f"async+{uri}"
        storage = storage_from_string(
            async_uri,
            implementation="redispy",
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            key_prefix="churn",
        )
        assert isinstance(storage, Storage)
        return cls(storage, timeout_s)

    async def charge(self, who: str, limits: Sequence[RateLimitItem], cost: int) -> Verdict:
        """Take `cost` from each of `who`'s limits in turn; the first that cannot pay refuses."""
        for limit in limits:
            verdict = await self._take(who, limit, cost)
            if not verdict.allowed:
                return verdict
        return ALLOWED

    async def _take(self, who: str, limit: RateLimitItem, cost: int) -> Verdict:
        now = self.clock()
        lease = self._leases.get((who, limit))
        if lease is None:
            lease = self._leases[who, limit] = _Lease()
        if now >= lease.window_ends:
            lease.tokens = 0
        if lease.tokens >= cost:
            lease.tokens -= cost
            return ALLOWED
        if cost > limit.amount:
            return Verdict(False, limit, limit.get_expiry(), too_large=True)
        if now < lease.denied_until:
            return Verdict(False, limit, lease.denied_until - now)
        if now < self._failed_until:
            metrics.count_fail_open()
            return ALLOWED
        ask = max(cost - lease.tokens, math.ceil(limit.amount * LEASE_FRACTION))
        key, expiry = window_of(who, limit, now)
        try:
            async with asyncio.timeout(self.timeout_s):
                count = await self.storage.incr(key, expiry, amount=ask)
                window_ends = await self.storage.get_expiry(key)
        except Exception as error:
            self._failed_until = now + FAIL_OPEN_S
            metrics.count_fail_open()
            log.warning(
                "Rate-limit store failed (%s: %s); letting requests through uncounted for %.0f s.",
                type(error).__name__,
                error,
                FAIL_OPEN_S,
            )
            return ALLOWED
        granted = max(0, min(ask, limit.amount - (count - ask)))
        lease.tokens += granted
        opened_it = count == ask
        lease.window_ends = (
            now + expiry if opened_it else min(window_ends + EXPIRY_ROUNDING_S, now + expiry)
        )
        if lease.tokens >= cost:
            lease.tokens -= cost
            return ALLOWED
        # `now` was read before the store's round trips, and a window never ends later than
        # its length from now; a rounded expiry may be late, so the store is asked again early.
        lease.denied_until = max(now, min(window_ends - EXPIRY_ROUNDING_S, now + expiry))
        return Verdict(False, limit, max(lease.denied_until - now, 0.0))


def window_of(who: str, limit: RateLimitItem, now: float) -> tuple[str, int]:
    """Where `who`'s count for `limit` is kept, and for how many seconds from `now`. A limit per
    day counts the UTC day (a daily quota starts again at midnight UTC, as documented); every
    other limit counts a window that starts with its first request."""
    if isinstance(limit, RateLimitItemPerDay) and limit.multiples == 1:
        day = datetime.fromtimestamp(now, UTC).date()
        midnight = datetime.combine(day + timedelta(days=1), dt_time(), UTC).timestamp()
        return f"{limit.key_for(who)}/{day.isoformat()}", max(math.ceil(midnight - now), 1)
    return limit.key_for(who), limit.get_expiry()
