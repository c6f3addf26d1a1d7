"""Reads what `identity.lua` reports about applied identity requests (operator API)."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace


class RequestReports:
    """Per-request reports (kept 7 days) and the workspace's skipped entries, ever."""

    def __init__(self, client: aioredis.Redis, keys: KeySpace) -> None:
        self._client = client
        self._keys = keys

    async def report(self, workspace_id: str, request_id: str) -> dict | None:
        raw = await self._client.get(self._keys.workspace(workspace_id, "req", request_id))
        if raw is None:
            return None
        report = orjson.loads(raw)
        report.setdefault("skipped_by_reason", {})
        report.setdefault("skipped_entries", [])
        if isinstance(report["skipped_by_reason"], list):  # cjson encodes an empty table as []
            report["skipped_by_reason"] = {}
        return report

    async def skipped(self, workspace_id: str) -> dict[str, int]:
        raw = await self._client.hgetall(self._keys.workspace(workspace_id, "skipped"))
        return {reason.decode(): int(n) for reason, n in sorted(raw.items())}
