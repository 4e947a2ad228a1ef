"""ASGI middleware: a request body over its path's limit gets a 413 while it is read.

A declared Content-Length over the limit is refused before any of the body is read. A body
without one is counted as it arrives; once it passes the limit, the app behind is told the
client disconnected, whatever it would answer is dropped, and the client gets the 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.http.errors import send_error


class BodyLimit:
    def __init__(self, app: ASGIApp, limits: dict[str, int], default_limit: int) -> None:
        self.app = app
        self.limits = limits
        self.default_limit = default_limit

    def limit_for(self, path: str) -> int:
        return next(
            (limit for prefix, limit in self.limits.items() if path.startswith(prefix)),
            self.default_limit,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return

        received = 0
        exceeded = False
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return
            response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    message = f"Request body too large: the limit here is {limit:,} bytes."
    await send_error(send, 413, message, [(b"connection", b"close")])
