"""ASGI middleware: a client may have only so many requests whose body has not come whole.

The body timeout ends each slow body after CHURN_BODY_TIMEOUT_S, but a client that opens
hundreds of connections and trickles a few bytes on each would still hold hundreds of them in a
worker. Past the cap, the same client's next request gets a 429 at once, before any of its body
is read; other clients are not affected. A client is its API key's name, or its address.
"""

from __future__ import annotations

from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.errors import send_error

NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
TOO_MANY = (
    "Too many unfinished request bodies from this client: {cap} at once in one worker "
    "(CHURN_MAX_UNFINISHED_BODIES_PER_CLIENT). Finish sending the ones under way first."
)


class UnfinishedBodies:
    def __init__(self, app: ASGIApp, per_client: int) -> None:
        self.app = app
        self.per_client = per_client
        self.unfinished: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in NO_BODY:
            await self.app(scope, receive, send)
            return
        client = scope.get("churn.client") or _address(scope)
        if self.unfinished[client] >= self.per_client:
            message = TOO_MANY.format(cap=self.per_client)
            await send_error(
                send, 429, message, [(b"retry-after", b"1"), (b"connection", b"close")]
            )
            return
        self.unfinished[client] += 1
        finished = False

        def finish() -> None:
            nonlocal finished
            if not finished:
                finished = True
                self.unfinished[client] -= 1
                if not self.unfinished[client]:
                    del self.unfinished[client]

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                finish()
            return message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            finish()


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
