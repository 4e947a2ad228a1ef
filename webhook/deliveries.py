"""Which webhook deliveries were relayed, shared by every relay replica and kept across restarts.

A delivery is claimed while it is being relayed and marked done only after Jenkins accepted it.
If Jenkins fails, the claim is released, so MLflow's retry of the same delivery goes through.
Keys expire: a done delivery after the replay window (older deliveries fail the timestamp
check anyway), a claim after the time a relay attempt may take.
"""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

Claim = Literal["claimed", "done", "in progress"]
DONE = b"done"


class DeliveryLog:
    def __init__(self, redis: Redis, done_ttl_s: int, claim_ttl_s: int, prefix: str) -> None:
        self.redis = redis
        self.done_ttl_s = done_ttl_s
        self.claim_ttl_s = claim_ttl_s
        self.prefix = prefix

    def _key(self, delivery_id: str) -> str:
        return f"{self.prefix}{delivery_id}"

    async def claim(self, delivery_id: str) -> Claim:
        if await self.redis.set(self._key(delivery_id), b"claimed", nx=True, ex=self.claim_ttl_s):
            return "claimed"
        state = await self.redis.get(self._key(delivery_id))
        if state is None:  # the other claim expired or was released just now
            return await self.claim(delivery_id)
        return "done" if state == DONE else "in progress"

    async def done(self, delivery_id: str) -> None:
        await self.redis.set(self._key(delivery_id), DONE, ex=self.done_ttl_s)

    async def release(self, delivery_id: str) -> None:
        await self.redis.delete(self._key(delivery_id))
