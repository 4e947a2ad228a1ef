"""Steady `/predict` traffic at a fixed rate, each customer with an id of its own, so every
answer can be found again in the prediction history."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

CONNECTIONS = 64
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Answer:
    sent_at: float
    status: str  # the HTTP status, or the client error's name
    customer_ids: tuple[str, ...]
    version: str | None


@dataclass
class SteadyLoad:
    """`rate` requests a second of `per_request` customers each, from `start()` to `stop()`."""

    url: str
    key: str
    records: list[dict[str, Any]]
    rate: float
    per_request: int
    answers: list[Answer] = field(default_factory=list)
    _tag: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, tag: str) -> None:
        self._tag, self.answers = tag, []
        self._stop.clear()
        self._thread = threading.Thread(target=asyncio.run, args=(self._send(),), daemon=True)
        self._thread.start()

    def stop(self) -> list[Answer]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT_S + 10)
        return list(self.answers)

    async def _send(self) -> None:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=TIMEOUT_S) as client:
            pending: set[asyncio.Task[None]] = set()
            started, sequence = time.monotonic(), 0
            while not self._stop.is_set():
                task = asyncio.create_task(self._one(client, sequence))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sequence += 1
                await asyncio.sleep(max(0.0, started + sequence / self.rate - time.monotonic()))
            if pending:
                await asyncio.wait(pending)

    async def _one(self, client: httpx.AsyncClient, sequence: int) -> None:
        ids = tuple(f"{self._tag}-{sequence}-{index}" for index in range(self.per_request))
        body = request_body(self.records, ids, sequence * self.per_request)
        sent_at = time.monotonic()
        try:
            response = await client.post(f"{self.url}/predict", json=body)
        except httpx.HTTPError as error:
            self.answers.append(Answer(sent_at, type(error).__name__, ids, None))
            return
        self.answers.append(answer_to(response, sent_at, ids))


def request_body(records: list[dict[str, Any]], ids: tuple[str, ...], first: int) -> dict[str, Any]:
    """A /predict body of the records from `first` on (wrapping round), one id each."""
    customers = [
        {**records[(first + index) % len(records)], "customerID": customer_id}
        for index, customer_id in enumerate(ids)
    ]
    return {"customers": customers}


def answer_to(response: httpx.Response, sent_at: float, ids: tuple[str, ...]) -> Answer:
    version = response.json()[0]["model_version"] if response.status_code == 200 else None
    return Answer(sent_at, str(response.status_code), ids, version)
