"""ASGI middleware: charges each request to its API key's rate limit and daily quota, in
customers, and answers a 429 with `Retry-After` and `RateLimit-*` headers when one is spent.

A request to /predict or /explain costs the customers in its body; anything else costs one.
It runs inside serving/authenticate.py, which names the key, and inside the body limit, so the
body it reads to count customers has already been held to its size.
"""

from __future__ import annotations

import math
from functools import cache

import limits
from limits import RateLimitItem
from pydantic_core import from_json
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import metrics
from serving.errors import send_error
from serving.key_store import KeyRecord
from serving.limiter import Limiter, Verdict
from serving.request_body import read_body, replay

COSTED_PATHS = frozenset({"/predict", "/explain"})


class RateLimit:
    def __init__(self, app: ASGIApp, limiter: Limiter, max_customers_per_request: int) -> None:
        self.app = app
        self.limiter = limiter
        self.max_cost = max_customers_per_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: KeyRecord | None = scope.get("churn.key")
        if key is None:
            await self.app(scope, receive, send)
            return
        cost = 1
        if scope["path"] in COSTED_PATHS and scope["method"] == "POST":
            body = await read_body(receive)
            if body is None:
                return
            cost = customers_in(body, self.max_cost)
            receive = replay(body, receive)
        verdict = await self.limiter.charge(
            key.key_id, limits_of(key.rate, key.daily_customers), cost
        )
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        metrics.count_rate_limited(key.name)
        await _too_many(send, key.name, cost, verdict)


def customers_in(body: bytes, max_cost: int) -> int:
    """How many customers a request body holds (at least 1, at most `max_cost`: a larger
    request is refused anyway); a body that is not JSON costs 1."""
    try:
        customers = from_json(body).get("customers")
    except (ValueError, AttributeError):
        return 1
    return min(max(len(customers), 1), max_cost) if isinstance(customers, list) else 1


@cache
def limits_of(rate: str, daily_customers: int | None) -> tuple[RateLimitItem, ...]:
    rate_limit = limits.parse(rate)
    if daily_customers is None:
        return (rate_limit,)
    return rate_limit, limits.RateLimitItemPerDay(daily_customers)


async def _too_many(send: Send, client: str, cost: int, verdict: Verdict) -> None:
    assert verdict.limit is not None
    limit = verdict.limit
    retry_after = max(math.ceil(verdict.retry_after_s), 1)
    per = f"{limit.amount:,} customers per {_window(limit)}"
    if verdict.too_large:
        message = (
            f"This request's {cost:,} customers exceed the limit of key {client!r}, {per}; "
            "send fewer customers per request."
        )
    else:
        message = f"Key {client!r} has used its {per}; retry in {retry_after} s."
    headers = [
        (b"retry-after", b"%d" % retry_after),
        (b"ratelimit-limit", b"%d" % limit.amount),
        (b"ratelimit-remaining", b"0"),
        (b"ratelimit-reset", b"%d" % retry_after),
        (b"ratelimit-policy", b"%d;w=%d" % (limit.amount, limit.get_expiry())),
    ]
    await send_error(send, 429, message, headers)


def _window(limit: RateLimitItem) -> str:
    unit = limit.GRANULARITY.name
    return unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"
