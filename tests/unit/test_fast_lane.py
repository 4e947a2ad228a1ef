"""The fast lane: which requests it takes, BentoML's request metrics, its timeout and its 500."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Iterator

import bentoml
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from serving.http.bentoml_request_metrics import families
from serving.http.fast_lane import FastLane, InstanceFront, serve_through_instance

PATHS = frozenset({"/predict", "/explain"})


def behind_bentoml(request: Request) -> PlainTextResponse:
    return PlainTextResponse("bentoml")


def bentoml_like_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", behind_bentoml, methods=["GET", "POST"])])


class Lane:
    """Answers what it is told to, and remembers the paths it was asked for."""

    def __init__(self, behaviour: str = "answer") -> None:
        self.behaviour = behaviour
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        if self.behaviour == "hang":
            await asyncio.sleep(60)
        if self.behaviour == "fail":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.behaviour == "fail-midway":
            raise RuntimeError("boom after the answer started")
        await send({"type": "http.response.body", "body": b"lane"})


@pytest.fixture(scope="module")
def app() -> Iterator[Starlette]:
    yield bentoml_like_app()


def served(app: Starlette, lane: Lane, timeout_s: float = 5.0) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=FastLane(app, lane, PATHS, timeout_s))
    return httpx.AsyncClient(transport=transport, base_url="http://lane")


async def post(client: httpx.AsyncClient, path: str) -> httpx.Response:
    async with client:
        return await client.post(path, content=b"{}")


def sample(metric: str, path: str, status: int) -> float:
    """A sample of one of BentoML's request metrics as the lane records them."""
    family = getattr(families(), metric)
    context = bentoml.server_context
    labels = {
        "endpoint": path,
        "http_response_code": str(status),
        "service_name": context.bento_name,
        "service_version": context.bento_version,
        "runner_name": context.service_name,
    }
    wanted = {name: str(value) for name, value in labels.items()}
    for collected in family.collect():
        for found in collected.samples:
            if found.name.endswith(("_total", "_count")) and found.labels == wanted:
                return float(found.value)
    return 0.0


def requests_counted(path: str, status: int) -> float:
    return sample("total", path, status)


def test_posts_to_the_scoring_paths_take_the_lane_and_the_rest_go_to_bentoml(
    app: Starlette,
) -> None:
    lane = Lane()

    async def ask() -> list[str]:
        async with served(app, lane) as client:
            return [
                (await client.post("/predict", content=b"{}")).text,
                (await client.post("/explain", content=b"{}")).text,
                (await client.get("/predict")).text,
                (await client.post("/score_file", content=b"")).text,
            ]

    assert asyncio.run(ask()) == ["lane", "lane", "bentoml", "bentoml"]
    assert lane.paths == ["/predict", "/explain"]


def test_lane_requests_count_in_bentomls_own_request_metrics(app: Starlette) -> None:
    before = requests_counted("/predict", 200)

    async def ask() -> None:
        async with served(app, Lane()) as client:
            for _ in range(3):
                await client.post("/predict", content=b"{}")

    asyncio.run(ask())
    assert requests_counted("/predict", 200) - before == 3
    assert sample("duration", "/predict", 200) >= 3


def test_a_request_past_the_timeout_gets_bentomls_504(app: Starlette) -> None:
    before = requests_counted("/predict", 504)
    response = asyncio.run(post(served(app, Lane("hang"), timeout_s=0.05), "/predict"))
    assert response.status_code == 504
    assert response.json() == {"error": "Not able to process the request in 0.05 seconds"}
    assert requests_counted("/predict", 504) - before == 1


def test_an_unexpected_error_is_a_500_in_the_service_format_and_logged(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="serving.http.fast_lane"):
        response = asyncio.run(post(served(app, Lane("fail")), "/explain"))
    assert response.status_code == 500
    assert "server log" in json.loads(response.content)["error"]
    assert "Answering /explain failed" in caplog.text


def test_an_error_after_the_answer_started_sends_no_second_answer(app: Starlette) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/predict", "method": "POST", "headers": []}
    asyncio.run(FastLane(app, Lane("fail-midway"), PATHS, 5.0)(scope, receive, send))
    assert [message["type"] for message in sent] == ["http.response.start"]


def test_only_the_named_service_is_served_through_its_instance() -> None:
    class Service:
        def to_asgi(self, is_main: bool = True) -> str:
            return "app"

    ours, other = Service(), Service()
    serve_through_instance(ours)
    front = ours.to_asgi()
    assert isinstance(front, InstanceFront) and front.app == "app"
    assert other.to_asgi() == "app"


def test_bentoml_still_has_what_serving_through_the_instance_relies_on() -> None:
    """serve_through_instance wraps `to_asgi`, which the worker serves, and asks
    `get_current_service()` for the instance. If a release stops serving `to_asgi()`, the
    checks and endpoints in front of BentoML's app go unserved, and the integration tests that
    count predictions per API key (tests/integration/test_access_control.py) fail."""
    assert inspect.signature(bentoml.Service.to_asgi).parameters.keys() >= {"self", "is_main"}
    assert callable(bentoml.get_current_service)
