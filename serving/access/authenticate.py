"""ASGI middleware: every request but health, docs and metrics needs an API key with the scope
of what it asks for.

The key comes as `Authorization: Bearer <key>` or `X-API-Key: <key>`. No key, a malformed,
unknown, wrong or revoked one get a 401 with `WWW-Authenticate`; a key without the scope gets a
403. A request let in carries its key (`churn.key`) and the key's name (`churn.client`) in the
ASGI scope, for rate limits and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from serving import metrics
from serving.access import api_keys
from serving.access.api_keys import Scope as KeyScope
from serving.access.key_cache import KeyCache, KeyStoreUnavailableError
from serving.http.errors import send_error

OPEN_PATHS = frozenset(
    {"/", "/docs", "/docs.json", "/schema.json", "/livez", "/readyz", "/healthz", "/ui"}
)
# The console at /ui signs people in itself, with a session cookie (console/session.py).
OPEN_PREFIXES = ("/static_content/", "/assets/", "/ui/")
SCOPE_OF_PREFIX: Mapping[str, KeyScope] = {
    "/predict": "predict",
    "/explain": "explain",
    "/score_file": "score_file",
    "/scored_files": "score_file",
    "/history": "history",
    "/customers": "history",
    "/challenger": "history",
    "/metrics": "metrics",
}
# Longer than any key, so an oversized header is refused before any work on it.
MAX_KEY_LENGTH = 100
# Past this many verified tokens a worker remembers, it starts again: keys are few, made-up
# tokens never get in.
MAX_VERIFIED_TOKENS = 10_000

MISSING = "An API key is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
MALFORMED = "The API key is malformed: a key looks like chn_<12 hex digits>_<43 characters>."
INVALID = "The API key is not valid."
REVOKED = "The API key was revoked."
UNAVAILABLE = "API keys cannot be checked right now; retry shortly."


class Authenticate:
    def __init__(
        self, app: ASGIApp, keys: KeyCache, pepper: bytes, metrics_require_key: bool = False
    ) -> None:
        self.app = app
        self.keys = keys
        self.pepper = pepper
        self.metrics_require_key = metrics_require_key
        # Tokens whose secret matched, with the stored digest it matched: a client's next
        # request with the same token skips parsing and hashing it while that digest stands.
        self._verified: dict[str, tuple[api_keys.PresentedKey, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = presented_token(scope["headers"])
        if not token:
            await _unauthorized(send, "missing", MISSING, 'Bearer realm="churn"')
            return
        verified = self._verified.get(token)
        presented = verified[0] if verified else _parse(token)
        if presented is None:
            await _unauthorized(send, "malformed", MALFORMED)
            return
        try:
            record = await self.keys.get(presented.key_id)
        except KeyStoreUnavailableError:
            # The key cache logs the outage once; each refusal is counted.
            metrics.count_rejection("store_unavailable")
            await send_error(send, 503, UNAVAILABLE, [(b"retry-after", b"5")])
            return
        if record is None:
            await _unauthorized(send, "unknown_key", INVALID)
            return
        if verified is None or verified[1] != record.digest:
            if not api_keys.matches(self.pepper, presented, record.digest):
                await _unauthorized(send, "wrong_secret", INVALID)
                return
            if len(self._verified) >= MAX_VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = (presented, record.digest)
        if record.revoked_at is not None:
            await _unauthorized(send, "revoked", REVOKED)
            return
        needed = scope_of(scope["path"])
        if needed is not None and not record.allows(needed):
            metrics.count_rejection("scope")
            message = f"The API key {record.name!r} lacks the {needed!r} scope this path needs."
            await send_error(send, 403, message)
            return
        self.keys.note_used(record.key_id)
        scope["churn.key"] = record
        scope["churn.client"] = record.name
        await self.app(scope, receive, send)

    def _is_open(self, path: str) -> bool:
        if path == "/metrics":
            return not self.metrics_require_key
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _parse(token: str) -> api_keys.PresentedKey | None:
    return api_keys.parse(token) if len(token) <= MAX_KEY_LENGTH else None


def presented_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The key from `Authorization: Bearer` or else `X-API-Key`; empty if neither holds one."""
    api_key = ""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key":
            api_key = value.decode("latin-1").strip()
    return api_key


def scope_of(path: str) -> KeyScope | None:
    """The scope a path needs; None for paths any valid key may use (such as /model)."""
    for prefix, needed in SCOPE_OF_PREFIX.items():
        if path == prefix or path.startswith(prefix + "/"):
            return needed
    return None


async def _unauthorized(send: Send, reason: str, message: str, challenge: str = "") -> None:
    metrics.count_rejection(reason)
    challenge = challenge or 'Bearer realm="churn", error="invalid_token"'
    await send_error(send, 401, message, [(b"www-authenticate", challenge.encode())])
