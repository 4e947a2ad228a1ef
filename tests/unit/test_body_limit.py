"""Body limits hold while a body is read, and a client that leaves mid-body costs nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from serving.http.body_limit import BodyLimit
from serving.http.fast_predict import FastPredict
from tests.unit.test_fast_predict import Scorer, _endpoint, other_routes

LIMIT = 1000


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    body = await Request(scope, receive).body()
    await JSONResponse({"length": len(body)})(scope, receive, send)


def _post(path: str, content: bytes | AsyncIterator[bytes]) -> httpx.Response:
    app = BodyLimit(echo_length, limits={"/files": 10 * LIMIT}, default_limit=LIMIT)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.post(path, content=content)

    return asyncio.run(post())


async def _chunks(count: int, size: int = 300) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.parametrize(
    ("path", "size", "status"),
    [("/predict", LIMIT, 200), ("/predict", LIMIT + 1, 413), ("/files/submit", 5 * LIMIT, 200)],
)
def test_a_declared_length_over_the_limit_is_refused(path: str, size: int, status: int) -> None:
    response = _post(path, b"x" * size)
    assert response.status_code == status
    if status == 413:
        assert response.json() == {
            "error": f"Request body too large: the limit here is {LIMIT:,} bytes."
        }


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit() -> None:
    assert _post("/predict", _chunks(3)).json() == {"length": 900}
    response = _post("/predict", _chunks(50))
    assert response.status_code == 413 and "too large" in response.json()["error"]


def test_a_client_that_disconnects_mid_body_is_never_scored() -> None:
    scorer = Scorer()
    app = FastPredict(other_routes, _endpoint(scorer))
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"customers": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert scorer.batches == [] and sent == []
