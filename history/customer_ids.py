"""Customer ids as stored: raw, or HMAC-SHA256 with a secret salt for teams that may not keep
raw ids. Reads hash the raw id the same way, so lookups still work."""

from __future__ import annotations

import hashlib
import hmac

from history.settings import HistorySettings


class CustomerIds:
    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = salt

    @classmethod
    def from_settings(cls, settings: HistorySettings) -> CustomerIds:
        if not settings.hash_ids or settings.id_salt is None:
            return cls()
        return cls(settings.id_salt.get_secret_value().encode())

    def stored(self, customer_id: str | None) -> str | None:
        if customer_id is None or self.salt is None:
            return customer_id
        return hmac.new(self.salt, customer_id.encode(), hashlib.sha256).hexdigest()
