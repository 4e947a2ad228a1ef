"""The outermost ASGI app: POST /predict and /explain go to their endpoints ahead of the layers
of BentoML's app, with what those layers give them kept.

BentoML's app passes every request through Starlette, its error handler, its request metrics,
OpenTelemetry, its timeout (a task and a timer per request) and the service's own middleware,
each wrapping `send` again. With the answer made up front and nothing scored, a /predict
request cost 320 µs of a worker's CPU inside that stack and 121 µs ahead of it
(docs/performance.md). So the lane takes the two scoring paths first and gives them:

- the service's own checks (API key and scope, file tasks, body limit, rate limit), in
  serving/http/gate.py, which every other request passes too, in front of BentoML's app;
- BentoML's request metrics, under its names and labels (`bentoml_service_request_total`,
  `_request_duration_seconds`, `_request_in_progress`, `_last_request_timestamp_seconds`;
  serving/http/bentoml_request_metrics.py);
- BentoML's timeout, with the same 504 body;
- a 500 in the service's error format for anything unexpected.

Everything else, and every request on BentoML's own path, goes to BentoML's app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import bentoml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.bentoml_request_metrics import RequestMetrics
from serving.http.errors import SCORING_FAILED, send_error

log = logging.getLogger(__name__)

# BentoML's TimeoutMiddleware's words.
TIMED_OUT = "Not able to process the request in {seconds} seconds"


class FastLane:
    """POST to one of `paths` goes to `lane`; the rest to `app` (BentoML's Starlette app)."""

    def __init__(
        self, app: ASGIApp, lane: ASGIApp, paths: frozenset[str], timeout_s: float
    ) -> None:
        self.app = app
        self.lane = lane
        self.paths = paths
        self.timeout_s = timeout_s
        self._metrics: dict[str, RequestMetrics] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in self.paths or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        metrics = self._metrics.get(path) or self._metrics_for(path)
        metrics.last_request.set(time.time())
        started = time.perf_counter()
        status = 0

        async def noted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.in_progress.inc()
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.lane(scope, receive, noted_send)
        except TimeoutError:
            if not status:
                status = 504
                await send_error(send, 504, TIMED_OUT.format(seconds=self.timeout_s))
        except Exception:
            log.exception("Answering %s failed", path)
            if not status:
                status = 500
                await send_error(send, 500, SCORING_FAILED)
        finally:
            metrics.in_progress.dec()
        if status:
            metrics.answered(status, time.perf_counter() - started)

    def _metrics_for(self, path: str) -> RequestMetrics:
        metrics = RequestMetrics(path)
        self._metrics[path] = metrics
        return metrics


class InstanceFront:
    """BentoML's app until the service instance exists; from then on, what the instance puts in
    front of it (`instance.front(app)`), built once, at the first request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is None:
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
                return
            front = self.front = bentoml.get_current_service().front(self.app)
        await front(scope, receive, send)


def serve_through_instance(service: Any) -> None:
    """Make the worker serve `InstanceFront(its app)` for `service`.

    The worker serves what `service.to_asgi()` returns, and BentoML's Service objects take no
    attributes of their own, so `to_asgi` is wrapped on the class, for this one service. This is
    the one place the project relies on more than BentoML's documented API: a release that
    stops serving `to_asgi()` fails the integration tests that count predictions per API key."""
    service_class = type(service)
    plain = service_class.to_asgi

    def to_asgi(self: Any, *args: Any, **kwargs: Any) -> ASGIApp:
        app = plain(self, *args, **kwargs)
        return InstanceFront(app) if self is service else app

    service_class.to_asgi = to_asgi
