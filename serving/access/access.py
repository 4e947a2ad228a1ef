"""What every door checks a request against: the API keys, the pepper their secrets are hashed
with, and the limiter that charges each key's customers."""

from __future__ import annotations

from dataclasses import dataclass

from serving.access.key_cache import KeyCache
from serving.access.key_store import KeyStore
from serving.access.limiter import Limiter
from serving.access.pepper import pepper_for
from serving.settings import ServingSettings


@dataclass(frozen=True)
class Access:
    keys: KeyCache
    pepper: bytes
    limiter: Limiter

    @classmethod
    def open(cls, settings: ServingSettings) -> Access | None:
        """None when CHURN_AUTH=off; UserError if the pepper cannot be read or made."""
        if settings.auth == "off":
            return None
        keys = KeyCache(KeyStore(settings.auth_db), settings.auth_cache_seconds)
        keys.prime()
        return cls(
            keys,
            pepper_for(settings.auth_db, settings.auth_pepper),
            Limiter.connect(settings.rate_limit_storage, settings.rate_limit_timeout_ms / 1000),
        )
