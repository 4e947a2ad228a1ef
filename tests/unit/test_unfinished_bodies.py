"""A client may have only so many bodies under way at once; others are not held up by it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from serving.http.unfinished_bodies import UnfinishedBodies

CAP = 3


async def read_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class Client:
    """One request whose body arrives only when `finish` is called."""

    def __init__(self, app: UnfinishedBodies, address: str, key: str | None = None) -> None:
        self.scope: dict[str, Any] = {
            "type": "http", "method": "POST", "path": "/predict", "headers": [],
            "client": (address, 40000),
        }  # fmt: skip
        if key:
            self.scope["churn.client"] = key
        self.body = asyncio.Queue[Message]()
        self.body.put_nowait({"type": "http.request", "body": b"{", "more_body": True})
        self.sent: list[Message] = []
        self.task = asyncio.create_task(app(self.scope, self.body.get, self._send))

    async def _send(self, message: Message) -> None:
        self.sent.append(message)

    def finish(self) -> None:
        self.body.put_nowait({"type": "http.request", "body": b"}", "more_body": False})

    async def status(self) -> int:
        await asyncio.wait_for(self.task, 5)
        return int(self.sent[0]["status"])


def test_past_the_cap_a_client_gets_a_429_before_its_body_is_read() -> None:
    async def scenario() -> None:
        app = UnfinishedBodies(read_then_answer, per_client=CAP)
        slow = [Client(app, "10.0.0.1") for _ in range(CAP)]
        await asyncio.sleep(0.01)
        refused = Client(app, "10.0.0.1")
        assert await refused.status() == 429
        assert (
            "CHURN_MAX_UNFINISHED_BODIES_PER_CLIENT" in json.loads(refused.sent[1]["body"])["error"]
        )
        assert not refused.body.empty()  # not a byte of its body was read

        other = Client(app, "10.0.0.2")  # another address
        keyed = Client(app, "10.0.0.1", key="crm")  # the same address with its own key
        other.finish()
        keyed.finish()
        assert await other.status() == 200
        assert await keyed.status() == 200

        slow[0].finish()
        assert await slow[0].status() == 200
        again = Client(app, "10.0.0.1")
        again.finish()
        assert await again.status() == 200
        for client in slow[1:]:
            client.finish()
            assert await client.status() == 200
        assert not app.unfinished

    asyncio.run(scenario())


def test_a_client_that_leaves_mid_body_frees_its_place() -> None:
    async def scenario() -> None:
        app = UnfinishedBodies(read_then_answer, per_client=1)
        gone = Client(app, "10.0.0.1")
        gone.body.put_nowait({"type": "http.disconnect"})
        gone.task.cancel()
        await asyncio.sleep(0.01)
        assert not app.unfinished
        fresh = Client(app, "10.0.0.1")
        fresh.finish()
        assert await fresh.status() == 200

    asyncio.run(scenario())
