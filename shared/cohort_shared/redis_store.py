"""Redis helpers: readiness, and the key layout every service follows (clients: state/client.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import redis.asyncio as aioredis


async def probe_redis(client: aioredis.Redis, timeout: float = 2.0) -> bool:
    """Readiness: does Redis answer a PING right now?"""
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False


@dataclass(frozen=True)
class KeySpace:
    """Builds Redis keys. Per-workspace keys carry the workspace as a hash tag (`{ws}`), so
    every key a script touches for one workspace lives in one Redis Cluster slot."""

    prefix: str
    service: str

    def workspace(self, workspace_id: str, *parts: str) -> str:
        return ":".join((f"{self.prefix}{self.service}:{{{workspace_id}}}", *parts))

    def service_wide(self, *parts: str) -> str:
        return ":".join((f"{self.prefix}{self.service}", *parts))
