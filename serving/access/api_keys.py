"""API keys: `chn_<key id>_<secret>`, of which only a peppered hash is ever stored.

The hash is HMAC-SHA256 keyed with a server-side pepper, so a leaked key table is useless
without the pepper, and checking a key costs one hash, not a slow password hash: the secret is
32 random bytes, not something a person chose, so there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

Scope = Literal["predict", "explain", "score_file", "history", "metrics", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PREFIX = "chn"
# The client named in metrics when no key was asked for (CHURN_AUTH=off), and for customers
# scored on BentoML's own API path (CHURN_FAST_PREDICT=false), which does not see the key.
ANONYMOUS = "anonymous"
# 12 hex digits of id; `secrets.token_urlsafe(32)` is always 43 characters.
KEY_PATTERN = re.compile(r"chn_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    token: str
    digest: str


@dataclass(frozen=True)
class PresentedKey:
    key_id: str
    secret: str


def issue(pepper: bytes) -> IssuedKey:
    """A new key: the token is shown to its owner once; only the digest is kept."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, f"{PREFIX}_{key_id}_{secret}", digest(pepper, key_id, secret))


def parse(token: str) -> PresentedKey | None:
    """The id and secret of a well-formed key; None for anything else, whatever its length."""
    match = KEY_PATTERN.fullmatch(token)
    return None if match is None else PresentedKey(match[1], match[2])


def digest(pepper: bytes, key_id: str, secret: str) -> str:
    return hmac.new(pepper, f"{key_id}_{secret}".encode(), hashlib.sha256).hexdigest()


def matches(pepper: bytes, presented: PresentedKey, stored_digest: str) -> bool:
    """Whether the presented secret is the stored one; the comparison takes the same time
    wherever the digests first differ."""
    return hmac.compare_digest(digest(pepper, presented.key_id, presented.secret), stored_digest)


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """`predict,explain` → ("predict", "explain"); a ValueError names an unknown scope."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"no scopes given; choose from {', '.join(SCOPES)}")
    unknown = [name for name in names if name not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(name for name in SCOPES if name in names))
