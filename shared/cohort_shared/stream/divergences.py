"""Partitions found out of step (see `divergence.py`), kept where every instance and the
operator API see them, and the repairs operators ask for: one hash each per consumer group,
outside every task's slot (written rarely, never with a task's state)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from aiokafka import TopicPartition

from ..redis_store import KeySpace
from .divergence import Divergence

REPAIR_ACTIONS = ("reapply", "accept")


def field(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"  # Kafka topic names never hold ':'


class DivergenceBook:
    def __init__(self, client, key_prefix: str, service: str, group_id: str) -> None:
        keys = KeySpace(key_prefix, service)
        self._client = client
        self.group_id = group_id
        self._found = keys.service_wide("divergences", group_id)
        self._asked = keys.service_wide("repairs", group_id)

    async def report(self, divergence: Divergence) -> None:
        await self._client.hset(self._found, field(divergence.tp), orjson.dumps(divergence.as_json()))

    async def divergences(self) -> list[dict]:
        raw = await self._client.hgetall(self._found)
        return [orjson.loads(value) for _, value in sorted(raw.items())]

    async def request_repair(self, tp: TopicPartition, action: str) -> bool:
        """Ask the owner of `tp` to repair it; False if no divergence is recorded for it."""
        if action not in REPAIR_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(REPAIR_ACTIONS)}")
        if not await self._client.hexists(self._found, field(tp)):
            return False
        await self._client.hset(self._asked, field(tp), action)
        return True

    async def pending(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        tps = list(tps)
        if not tps:
            return {}
        actions = await self._client.hmget(self._asked, [field(tp) for tp in tps])
        return {tp: a.decode() for tp, a in zip(tps, actions, strict=True) if a is not None}

    async def repaired(self, tp: TopicPartition) -> None:
        await self._client.hdel(self._found, field(tp))
        await self._client.hdel(self._asked, field(tp))
