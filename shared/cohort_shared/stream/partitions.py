"""What Redis keeps per input partition of one consumer group (one hash per kind, fields
`<topic>:<partition>`):

- fence:      the token of the consumer that owns the partition now; tracked scripts refuse
              to write for any other (a zombie), see `scripts.py`;
- inflight:   the last offset of the batch being applied, written before its scripts run and
              dropped once its Kafka transaction committed: the next owner republishes
              those records first (`processor.py`);
- progress:   the last offset whose effects are in Redis, written after the batch's scripts
              and before its Kafka commit. Redis persists and replicates writes in order, so
              if this survived a crash or failover, every effect before it did too;
- divergence: partitions whose progress disagrees with Kafka's committed offset (see
              `divergence.py`), for operators and every instance's `/readyz`;
- repair:     the repair an operator asked for, picked up by the partition's owner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from aiokafka import TopicPartition

from ..redis_store import KeySpace
from .divergence import Divergence

log = logging.getLogger(__name__)

REPAIR_ACTIONS = ("reapply", "accept")


def field(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"  # Kafka topic names never hold ':'


def parse_field(text: str) -> TopicPartition:
    topic, _, partition = text.rpartition(":")
    return TopicPartition(topic, int(partition))


@dataclass(frozen=True)
class Marks:
    """What Redis says of one partition when it is assigned."""

    in_flight: int | None
    applied: int | None


class PartitionLedger:
    """The per-partition records of one consumer group (see the module docstring)."""

    def __init__(self, client: aioredis.Redis, keys: KeySpace, group_id: str) -> None:
        self._client = client
        self._keys = keys
        self.group_id = group_id
        self.fence_key = keys.service_wide("eos-fence", group_id)
        self._inflight = keys.service_wide("eos-inflight", group_id)
        self._progress = keys.service_wide("eos-progress", group_id)
        self._divergence = keys.service_wide("eos-divergence", group_id)
        self._repair = keys.service_wide("eos-repair", group_id)

    async def claim(self, tps: Iterable[TopicPartition], token: str) -> None:
        """From now on only `token` may apply records of `tps`."""
        mapping = {field(tp): token for tp in tps}
        if mapping:
            await self._client.hset(self.fence_key, mapping=mapping)

    async def read(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Marks]:
        if not tps:
            return {}
        names = [field(tp) for tp in tps]
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(self._inflight, names)
        pipe.hmget(self._progress, names)
        in_flight, applied = await pipe.execute()
        return {tp: Marks(_int(f), _int(a)) for tp, f, a in zip(tps, in_flight, applied, strict=True)}

    async def mark_in_flight(self, last_offsets: Mapping[TopicPartition, int]) -> None:
        await self._client.hset(self._inflight, mapping={field(tp): o for tp, o in last_offsets.items()})

    async def record_applied(self, last_offsets: Mapping[TopicPartition, int]) -> None:
        await self._client.hset(self._progress, mapping={field(tp): o for tp, o in last_offsets.items()})

    async def clear_in_flight(self, tps: Iterable[TopicPartition]) -> None:
        """Best effort: a mark left behind only makes the next owner republish a committed
        batch's stored outputs, which it finds already dropped (see `Tracking`)."""
        names = [field(tp) for tp in tps]
        if not names:
            return
        try:
            await self._client.hdel(self._inflight, *names)
        except Exception as exc:  # noqa: BLE001 - best effort after a commit, see above
            log.warning("in-flight marks not dropped (%s)", type(exc).__name__)

    # ---------------------------------------------------------------- divergence and repair

    async def report_divergence(self, divergence: Divergence) -> None:
        await self._client.hset(self._divergence, field(divergence.tp), orjson.dumps(divergence.as_json()))

    async def divergences(self) -> list[dict]:
        raw = await self._client.hgetall(self._divergence)
        return [orjson.loads(value) for _, value in sorted(raw.items())]

    async def request_repair(self, tp: TopicPartition, action: str) -> bool:
        """Ask the owner of `tp` to repair it; False if no divergence is recorded for it."""
        if action not in REPAIR_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(REPAIR_ACTIONS)}")
        if not await self._client.hexists(self._divergence, field(tp)):
            return False
        await self._client.hset(self._repair, field(tp), action)
        return True

    async def pending_repairs(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        tps = list(tps)
        if not tps:
            return {}
        actions = await self._client.hmget(self._repair, [field(tp) for tp in tps])
        return {tp: a.decode() for tp, a in zip(tps, actions, strict=True) if a is not None}

    async def repaired(self, tp: TopicPartition) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hdel(self._divergence, field(tp))
        pipe.hdel(self._repair, field(tp))
        await pipe.execute()

    async def forget_partition(self, tp: TopicPartition, tracking_patterns: Iterable[str]) -> int:
        """For an operator who accepts Kafka's position: drop every tracking and outbox key of
        `tp` (found by `tracking_patterns`) and its marks. Returns how many keys went."""
        dropped = 0
        for pattern in tracking_patterns:
            async for key in self._client.scan_iter(match=pattern, count=1000):
                dropped += await self._client.delete(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.hdel(self._inflight, field(tp))
        pipe.hdel(self._progress, field(tp))
        await pipe.execute()
        return dropped


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw is not None else None
