"""Counting requests per fixed window (see domain/rate_limit.py): per data import key per
hour, and per workspace and Braze REST endpoint group."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace

from ..domain.rate_limit import WINDOW_SECONDS, Limit, Quota, quota_after
from ..domain.workspace_keys import KeyOwner
from .key_store import SERVICE


class RateLimiter(Protocol):
    async def retry_after(self, owner: KeyOwner) -> int | None:
        """Count this request of a data import key; None if allowed, else the seconds until it would be."""
        ...

    async def take(self, workspace_id: str, counter: str, limit: Limit) -> Quota:
        """Count this request on the workspace's `counter`; what is left of `limit`."""
        ...


class RedisRateLimiter:
    """One INCR per request on a counter that expires with its window."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, limit_per_hour: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = KeySpace(key_prefix, SERVICE)
        self._hourly = Limit(limit_per_hour, WINDOW_SECONDS)
        self._clock = clock

    async def retry_after(self, owner: KeyOwner) -> int | None:
        return (await self.take(owner.workspace_id, owner.key_id, self._hourly)).retry_after

    async def take(self, workspace_id: str, counter: str, limit: Limit) -> Quota:
        now = self._clock()
        window_id = int(now // limit.window_seconds)
        key = self._keys.workspace(workspace_id, "rate", counter, str(window_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, limit.window_seconds + 60, nx=True)
            count, _ = await pipe.execute()
        return quota_after(count, limit, now)


class InMemoryRateLimiter:
    """The same contract in a dict, for unit tests."""

    def __init__(self, limit_per_hour: int, clock: Callable[[], float] = time.time) -> None:
        self._hourly = Limit(limit_per_hour, WINDOW_SECONDS)
        self._clock = clock
        self._counts: dict[tuple[str, str, int, int], int] = {}

    async def retry_after(self, owner: KeyOwner) -> int | None:
        return (await self.take(owner.workspace_id, owner.key_id, self._hourly)).retry_after

    async def take(self, workspace_id: str, counter: str, limit: Limit) -> Quota:
        now = self._clock()
        slot = (workspace_id, counter, limit.window_seconds, int(now // limit.window_seconds))
        self._counts[slot] = self._counts.get(slot, 0) + 1
        return quota_after(self._counts[slot], limit, now)
