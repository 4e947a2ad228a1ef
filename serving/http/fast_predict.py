"""POST /predict and /explain answered in ASGI, with adaptive batching that never holds a
request back.

BentoML's per-request API path costs more than scoring a customer, so this middleware answers
POST /predict (and, in a second instance, /explain) itself (docs/performance.md has the
figures), in serving/http/fast_lane.py ahead of BentoML's app. It validates with the same request
model, batches with serving/http/batcher.py and scores with the service's own function. The
`predict` and `explain` APIs stay declared: /schema.json, /docs and BentoML clients see the
same endpoints, and this answers them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from random import getrandbits, uniform
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.access.api_keys import ANONYMOUS
from serving.access.rate_limit import CHARGE
from serving.http.batcher import Batcher, OverloadedError
from serving.http.errors import (
    SCORING_FAILED,
    Refusal,
    error_body,
    first_unscorable_prediction,
    rejection_summary,
    unscorable_message,
    validation_error_body,
)
from serving.http.request_body import read_body

log = logging.getLogger(__name__)
# Scores customers; the other lists give, for each customer, the client that sent it and the
# id of its request.
Score = Callable[[list[Any], list[str], list[str]], list[dict[str, Any]]]


# Takes a request's customers from its key's rate limit: None, or the answer refusing it.
Charge = Callable[[int], Awaitable[Refusal | None]]


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: Sequence[tuple[bytes, bytes]] = ()


class ClientRequest(NamedTuple):
    client: str
    customers: list[Any]
    request_id: str = ""


# Documented in the README: what a client sees when the batcher sheds its request.
OVERLOADED = (
    "Overloaded: the service is answering as many requests as it can and did not score this one. "
    "Retry after a short wait."
)
RETRY_AFTER_SECONDS = 1
# Past this many open connections the counts start again: cheaper than noticing closes.
MAX_CONNECTIONS_TRACKED = 10_000
# A client's own X-Request-ID is kept when it looks like this; otherwise one is made.
CLIENT_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
NOT_READY = "The model is still loading; retry after a short wait."
BODY_TOO_SLOW = (
    "The request body did not arrive within {seconds:g} s (CHURN_BODY_TIMEOUT_S); send it "
    "whole, at once."
)


class PredictEndpoint:
    """One per worker: validates, batches and scores; the service binds its scoring function."""

    def __init__(
        self,
        request_model: type[BaseModel],
        max_latency_ms: int,
        max_batch_size: int,
        max_in_flight: int = 1000,
        record_batch: Callable[[int], None] = lambda requests: None,
        unscorable: Callable[[Sequence[dict[str, Any]]], int | None] = (
            first_unscorable_prediction
        ),
        body_timeout_s: float = 5.0,
    ) -> None:
        self.request_model = request_model
        self.max_latency_ms = max_latency_ms
        self.max_batch_size = max_batch_size
        self.max_in_flight = max_in_flight
        self.body_timeout_s = body_timeout_s
        self.record_batch = record_batch
        self.unscorable = unscorable
        self.in_flight = 0
        self._score: Score | None = None
        self._batched: Batcher[ClientRequest, list[dict[str, Any]]] | None = None

    def bind(self, score: Score) -> None:
        self._score = score
        self._batched = Batcher(
            self._score_batch, _customer_count, self.max_batch_size, self.max_latency_ms
        )

    def _score_batch(self, requests: Sequence[ClientRequest]) -> list[list[dict[str, Any]]]:
        assert self._score is not None
        self.record_batch(len(requests))
        customers = [customer for request in requests for customer in request.customers]
        clients = [request.client for request in requests for _ in request.customers]
        request_ids = [request.request_id for request in requests for _ in request.customers]
        predictions = self._score(customers, clients, request_ids)
        answers, start = [], 0
        for request in requests:
            answers.append(predictions[start : start + len(request.customers)])
            start += len(request.customers)
        return answers

    async def answer(
        self,
        receive: Receive,
        client: str = ANONYMOUS,
        charge: Charge | None = None,
        request_id: str = "",
    ) -> Answer | None:
        """The answer to one request; None when the client left mid-body. A valid request is
        charged its customers with `charge` (serving/access/rate_limit.py) before it is scored.

        The body must come whole within `body_timeout_s` (else a 408), and only then does the
        request count as in flight, so clients that send their bodies slowly hold a connection
        each, never a place of the requests being scored. Each request draws its deadline
        between 1 and 1.5 times `body_timeout_s`: bodies stalled together that all timed out
        together would answer, and reconnect, in one burst that stalls the event loop.
        Past `max_in_flight` requests the answer is an immediate 503: when the worker's event
        loop is the bottleneck, requests wait there, where the batcher's latency budget cannot
        see them, and the number in flight is what bounds that wait.
        """
        if self._batched is None:
            return Answer(503, error_body(NOT_READY))
        try:
            async with asyncio.timeout(self.body_timeout_s * uniform(1.0, 1.5)):
                body = await read_body(receive)
        except TimeoutError:
            message = BODY_TOO_SLOW.format(seconds=self.body_timeout_s)
            return Answer(408, error_body(message))
        if body is None:
            return None
        if self.in_flight >= self.max_in_flight:
            return Answer(503, error_body(OVERLOADED))
        self.in_flight += 1
        try:
            return await self._answer(body, ClientRequest(client, [], request_id), charge)
        finally:
            self.in_flight -= 1

    async def _answer(self, body: bytes, request: ClientRequest, charge: Charge | None) -> Answer:
        assert self._batched is not None
        try:
            # An empty body is an empty request: its error then names the missing `customers`.
            customers = self.request_model.model_validate_json(body or b"{}").customers  # type: ignore[attr-defined]
        except ValidationError as error:
            log.warning("Rejected a bad request with 400: %s", rejection_summary(error))
            return Answer(400, validation_error_body(error))
        if charge is not None:
            refusal = await charge(len(customers))
            if refusal is not None:
                return Answer(refusal.status, error_body(refusal.message), refusal.headers)
        try:
            predictions = await self._batched(request._replace(customers=customers))
        except OverloadedError:
            return Answer(503, error_body(OVERLOADED))
        except Exception:
            log.exception("Scoring failed")
            return Answer(500, error_body(SCORING_FAILED))
        unscorable = self.unscorable(predictions)
        if unscorable is not None:
            return Answer(400, error_body(unscorable_message(unscorable)))
        # pydantic-core encodes several times faster than the json module.
        return Answer(200, to_json(predictions))


class FastPredict:
    """ASGI middleware: POST `path` goes to the endpoint, everything else passes through."""

    def __init__(
        self,
        app: ASGIApp,
        endpoint: PredictEndpoint,
        path: str = "/predict",
        requests_per_connection: int = 0,
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        self.path = path
        self.requests_per_connection = requests_per_connection
        self._served: dict[tuple[Any, ...], int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        answer = await self.endpoint.answer(
            receive, scope.get("churn.client", ANONYMOUS), scope.get(CHARGE), request_id
        )
        if answer is None:
            return
        status, body, extra_headers = answer
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"x-request-id", request_id.encode()),
        ]
        headers.extend(extra_headers)
        if status == 503:
            headers.append((b"retry-after", b"%d" % RETRY_AFTER_SECONDS))
        # After a 408 the rest of the body may still be on its way: the connection goes.
        if status == 408 or self._last_on_connection(scope.get("client")):
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _last_on_connection(self, client: Any) -> bool:
        """Whether this response closes its connection (see `requests_per_connection` in
        serving/settings.py). Connections are told apart by the client's address and port."""
        if not self.requests_per_connection or client is None:
            return False
        key = tuple(client)
        served = self._served.pop(key, 0) + 1
        if served >= self.requests_per_connection:
            return True
        if len(self._served) >= MAX_CONNECTIONS_TRACKED:
            self._served.clear()
        self._served[key] = served
        return False


def _customer_count(request: ClientRequest) -> int:
    return len(request.customers)


def _request_id(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is short printable text, else a new one: it is
    recorded with each prediction and sent back, to find a request in the history. A new one
    is 128 random bits in hex, as uuid4().hex is, in a ninth of the time: it needs to be
    unique, not unguessable."""
    for name, value in headers:
        if name == b"x-request-id":
            if CLIENT_REQUEST_ID.fullmatch(value):
                return value.decode()
            break
    return f"{getrandbits(128):032x}"
