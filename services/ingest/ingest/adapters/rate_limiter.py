"""Counting requests per data import key per hour (see domain/rate_limit.py for the window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace

from ..domain.data_import_keys import KeyOwner
from ..domain.rate_limit import WINDOW_SECONDS, current_window, over_limit
from .key_store import SERVICE


class RateLimiter(Protocol):
    async def retry_after(self, owner: KeyOwner) -> int | None:
        """Count this request; None if allowed, else the seconds until it would be."""
        ...


class RedisRateLimiter:
    """One INCR per request on a counter that expires with its window."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, limit_per_hour: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._keys = KeySpace(key_prefix, SERVICE)
        self._limit = limit_per_hour
        self._clock = clock

    async def retry_after(self, owner: KeyOwner) -> int | None:
        window = current_window(self._clock())
        counter = self._keys.workspace(owner.workspace_id, "rate", owner.key_id, str(window.window_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, WINDOW_SECONDS + 60, nx=True)
            count, _ = await pipe.execute()
        return window.seconds_left if over_limit(count, self._limit) else None


class InMemoryRateLimiter:
    """The same contract in a dict, for unit tests."""

    def __init__(self, limit_per_hour: int, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit_per_hour
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def retry_after(self, owner: KeyOwner) -> int | None:
        window = current_window(self._clock())
        slot = (owner.key_id, window.window_id)
        self._counts[slot] = self._counts.get(slot, 0) + 1
        return window.seconds_left if over_limit(self._counts[slot], self._limit) else None
