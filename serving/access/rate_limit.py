"""ASGI middleware: charges each request to its API key's rate limit and daily quota, in
customers, and answers a 429 with `Retry-After` and `RateLimit-*` headers when one is spent.

A request to /predict or /explain costs the customers in its body (one of them charged before
the body is read, so an invalid or abandoned body costs one too); anything else costs one.
It runs inside serving/access/authenticate.py, which names the key, and inside the body limit,
so the body it reads to count customers has already been held to its size. Paths in
`charged_by_app` are not read here: the app behind counts the customers as it validates them and
calls `scope[CHARGE]`, which saves parsing the body twice on the hot path.
"""

from __future__ import annotations

import math
from functools import cache, partial

import limits
from limits import RateLimitItem
from pydantic_core import from_json
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import metrics
from serving.access.key_store import KeyRecord
from serving.access.limiter import Limiter, Verdict
from serving.http.errors import Refusal, send_error
from serving.http.request_body import read_body, replay

# Where this middleware leaves the charge for a request the app behind counts (`charged_by_app`).
CHARGE = "churn.charge"

COSTED_PATHS = frozenset({"/predict", "/explain"})


class RateLimit:
    def __init__(
        self,
        app: ASGIApp,
        limiter: Limiter,
        max_customers_per_request: int,
        charged_by_app: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.max_cost = max_customers_per_request
        self.charged_by_app = charged_by_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: KeyRecord | None = scope.get("churn.key")
        if key is None:
            await self.app(scope, receive, send)
            return
        costed = scope["path"] in COSTED_PATHS and scope["method"] == "POST"
        if costed and scope["path"] in self.charged_by_app:
            # One customer before the body is read, so a bad, slow or abandoned body costs one;
            # the app charges the rest of a valid request's customers.
            refusal = await self.charge(key, 1)
            if refusal is None:
                scope[CHARGE] = partial(self.charge_rest, key)
                await self.app(scope, receive, send)
            else:
                await send_error(send, refusal.status, refusal.message, refusal.headers)
            return
        cost = 1
        if costed:
            body = await read_body(receive)
            if body is None:
                return
            cost = customers_in(body, self.max_cost)
            receive = replay(body, receive)
        refusal = await self.charge(key, cost)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await send_error(send, refusal.status, refusal.message, refusal.headers)

    async def charge(self, key: KeyRecord, cost: int) -> Refusal | None:
        return await charge(self.limiter, key, cost)

    async def charge_rest(self, key: KeyRecord, customers: int) -> Refusal | None:
        """A validated request's customers past the one charged before its body was read."""
        if customers <= 1:
            return None
        return await charge(self.limiter, key, customers - 1, reported=customers)


async def charge(
    limiter: Limiter, key: KeyRecord, cost: int, reported: int | None = None
) -> Refusal | None:
    """None if `key` may spend `cost` customers now; else the 429 to answer with, naming
    `reported` customers (the request's, when part was charged before). Every door that scores
    charges through this: the API here, the console in console/pages.py."""
    verdict = await limiter.charge(key.key_id, limits_of(key.rate, key.daily_customers), cost)
    if verdict.allowed:
        return None
    metrics.count_rate_limited(key.name)
    return too_many(key.name, reported or cost, verdict)


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


def too_many(client: str, cost: int, verdict: Verdict) -> Refusal:
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
    return Refusal(429, message, headers)


def _window(limit: RateLimitItem) -> str:
    unit = limit.GRANULARITY.name
    return unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"
