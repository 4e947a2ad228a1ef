"""CPU per request of access control alone: the key check and the rate-limit charge, run
in-process on a one-customer /predict body, against an app that does nothing.

    python -m loadtests.auth_cost [--storage redis://127.0.0.1:6379]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loadtests.customers import load_records
from serving.access.api_keys import Scope as KeyScope
from serving.access.authenticate import Authenticate
from serving.access.key_cache import KeyCache
from serving.access.key_store import KeyStore
from serving.access.limiter import Limiter
from serving.access.rate_limit import CHARGE, RateLimit

PEPPER = b"benchmark pepper"
REQUESTS = 20_000


async def answer_nothing(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body and, as /predict does, charges its one customer if asked to."""
    await receive()
    if CHARGE in scope:
        await scope[CHARGE](1)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[]"})


async def microseconds_per_request(app: ASGIApp, token: str, body: bytes) -> float:
    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + token.encode()),
    ]

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        return None

    async def one() -> None:
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
        await app(scope, receive, send)

    for _ in range(500):
        await one()
    started = time.process_time()
    for _ in range(REQUESTS):
        await one()
    return (time.process_time() - started) / REQUESTS * 1e6


async def measure(storage: str) -> dict[str, float]:
    store = KeyStore(f"sqlite:///{Path(tempfile.mkdtemp()) / 'keys.db'}")
    scopes: tuple[KeyScope, ...] = ("predict",)
    token = store.create("bench", scopes, "1000000/second", None, PEPPER).token
    body = json.dumps({"customers": load_records(limit=1)}).encode()
    keys = KeyCache(store, max_age_s=10)
    limiter = Limiter.connect(storage, timeout_s=0.1)
    chains: dict[str, ASGIApp] = {
        "nothing": answer_nothing,
        "key check": Authenticate(answer_nothing, keys, PEPPER),
        "key check + rate limit": Authenticate(
            RateLimit(answer_nothing, limiter, 1000, frozenset({"/predict"})), keys, PEPPER
        ),
    }
    return {name: await microseconds_per_request(app, token, body) for name, app in chains.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="memory://", help="where limits are counted")
    args = parser.parse_args()
    timings = asyncio.run(measure(args.storage))
    for name, microseconds in timings.items():
        extra = microseconds - timings["nothing"]
        print(f"{name:24} {microseconds:6.1f} µs per request ({extra:+.1f} µs)")


if __name__ == "__main__":
    main()
