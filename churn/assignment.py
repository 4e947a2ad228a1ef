"""Deterministic assignment by a salted hash: the same key always lands on the same side.

The challenger's canary and the retention experiments' control groups both pick customers this
way, so a customer keeps its arm and its group across requests, files, Spark tasks and the
stream, in every process, with nothing stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

HASH_SPAN = 2**64


def in_share(salt: str, keys: Sequence[str | None], share: float) -> list[bool]:
    """Whether each key falls in the `share` (0..1) picked by `salt`; a missing key never does."""
    if share <= 0:
        return [False] * len(keys)
    if share >= 1:
        return [key is not None for key in keys]
    bound = share * HASH_SPAN
    prefix = salt.encode() + b"|"
    return [
        key is not None
        and int.from_bytes(blake2b(prefix + key.encode(), digest_size=8).digest()) < bound
        for key in keys
    ]
