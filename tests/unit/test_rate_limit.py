"""The rate-limit middleware: requests cost their customers, the app still gets the whole body,
and a spent limit is a 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from limits.aio.storage import MemoryStorage
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.access.key_store import KeyRecord
from serving.access.limiter import Limiter
from serving.access.rate_limit import RateLimit, customers_in
from serving.http.fast_predict import FastPredict, PredictEndpoint
from serving.http.request_body import read_body
from serving.model.schema import request_model

KEY = KeyRecord("0123456789ab", "crm", "x", ("predict",), "10/minute", None, datetime.now(UTC))


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive) or b""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def with_key(app: ASGIApp, key: KeyRecord | None) -> ASGIApp:
    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        if key is not None:
            scope["churn.key"] = key
        await app(scope, receive, send)

    return authenticated


def _post_all(key: KeyRecord | None, requests: list[tuple[str, bytes]]) -> list[httpx.Response]:
    app = with_key(RateLimit(echo, Limiter(MemoryStorage(), 1), 1000), key)

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return [await client.post(path, content=body) for path, body in requests]

    return asyncio.run(post_all())


def _customers(count: int) -> bytes:
    return json.dumps({"customers": [{"tenure": 1}] * count}).encode()


def test_predict_costs_its_customers_and_the_app_gets_the_body_unchanged() -> None:
    responses = _post_all(KEY, [("/predict", _customers(6)), ("/explain", _customers(5))])
    assert responses[0].status_code == 200
    assert responses[0].content == _customers(6)
    limited = responses[1]
    assert limited.status_code == 429
    assert "Key 'crm' has used its 10 customers per minute" in limited.json()["error"]
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert limited.headers["ratelimit-limit"] == "10"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-reset"] == str(retry_after)
    assert limited.headers["ratelimit-policy"] == "10;w=60"


def test_other_paths_cost_one_and_requests_without_a_key_are_not_counted() -> None:
    responses = _post_all(KEY, [("/model", _customers(100))] * 11)
    assert [response.status_code for response in responses] == [200] * 10 + [429]
    assert all(r.status_code == 200 for r in _post_all(None, [("/predict", _customers(11))] * 3))


def test_a_request_over_the_whole_limit_is_told_to_send_fewer() -> None:
    [response] = _post_all(KEY, [("/predict", _customers(11))])
    assert response.status_code == 429
    assert "send fewer customers per request" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "cost"),
    [
        (_customers(3), 3),
        (_customers(0), 1),
        (_customers(5000), 1000),
        (b'{"customers": [', 1),
        (b"", 1),
        (b"[1, 2]", 1),
        (b'{"customers": "all"}', 1),
    ],
)
def test_the_cost_of_a_body(body: bytes, cost: int) -> None:
    assert customers_in(body, max_cost=1000) == cost


def test_the_fast_predict_path_charges_the_customers_it_validated_and_scores_none_it_refused() -> (
    None
):
    scored: list[str] = []

    def score(
        customers: list[Any], clients: list[str], request_ids: list[str]
    ) -> list[dict[str, Any]]:
        scored.extend(customer.customer_id for customer in customers)
        return [{"customer_id": customer.customer_id} for customer in customers]

    class Customer(BaseModel):
        customer_id: str

    endpoint = PredictEndpoint(request_model(Customer, 100, {}), 1000, 100)
    endpoint.bind(score)
    limiter = Limiter(MemoryStorage(), 1)
    app = with_key(
        RateLimit(FastPredict(echo, endpoint), limiter, 1000, frozenset({"/predict"})), KEY
    )

    def body(first: int, count: int) -> bytes:
        return json.dumps(
            {"customers": [{"customer_id": str(n)} for n in range(first, first + count)]}
        ).encode()

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return [
                await client.post("/predict", content=content)
                for content in (body(0, 6), b'{"customers": "bad"}', body(6, 5), body(11, 2))
            ]

    responses = asyncio.run(post_all())
    # 6, then 1 for the bad body, then 1 + 4 refused (the one charged before the body stays
    # spent), then 2 of the 10.
    assert [response.status_code for response in responses] == [200, 400, 429, 200]
    assert responses[2].headers["ratelimit-limit"] == "10"
    assert int(responses[2].headers["retry-after"]) >= 1
    assert "5 customers" not in responses[2].text
    assert scored == [str(n) for n in (*range(6), *range(11, 13))]


def test_invalid_bodies_from_a_limited_key_are_charged_until_its_limit_is_spent() -> None:
    class Customer(BaseModel):
        customer_id: str

    endpoint = PredictEndpoint(request_model(Customer, 1000, {}), 1000, 100)
    endpoint.bind(lambda customers, clients, request_ids: [])
    app = with_key(
        RateLimit(FastPredict(echo, endpoint), Limiter(MemoryStorage(), 1), 1000,
                  frozenset({"/predict"})),
        KEY,
    )  # fmt: skip
    invalid = json.dumps({"customers": [{"tenure": 1}] * 1000}).encode()

    async def post_all() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return [(await client.post("/predict", content=invalid)).status_code for _ in range(30)]

    assert asyncio.run(post_all()) == [400] * 10 + [429] * 20
