"""The console's session and CSRF tokens: signed, stateless, so any worker answers any page.

After a person signs in with an API key, the `churn_session` cookie holds the key's id, signed
with the server secret (itsdangerous) and dated; each page re-checks the key in the key cache,
so a revoked key ends its sessions within the cache's age. The raw key is never stored.
Forms carry a CSRF token: an HMAC of the `churn_csrf` cookie's random value, which a page on
another site can neither read nor compute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "churn_session"
CSRF_COOKIE = "churn_csrf"
SESSION_SECONDS = 12 * 3600
COOKIE_FLAGS = {"secure": True, "httponly": True, "samesite": "strict", "path": "/ui"}


@dataclass(frozen=True)
class Sessions:
    secret: bytes

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt="churn-console-session")

    def issue(self, key_id: str) -> str:
        return self._serializer().dumps({"key_id": key_id})

    def key_id(self, cookie: str | None) -> str | None:
        """The key id of a valid, unexpired session cookie; None otherwise."""
        if not cookie:
            return None
        try:
            data = self._serializer().loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        key_id = data.get("key_id") if isinstance(data, dict) else None
        return key_id if isinstance(key_id, str) else None

    def csrf_token(self, nonce: str) -> str:
        return hmac.new(self.secret, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), token)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def console_secret(configured: str | None, pepper: bytes | None) -> bytes:
    """CHURN_UI_SECRET if set; else derived from the API-key pepper, which every worker and
    replica shares; else (auth off) a fixed label, since there is no session to protect."""
    if configured:
        return configured.encode()
    if pepper is not None:
        return hmac.new(pepper, b"churn-console-session", hashlib.sha256).digest()
    return b"churn-console-without-access-control"
