"""Per-record tracking keys and the outbox entries a transaction wrote (see `scripts.py`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from ..redis_store import KeySpace
from .partitions import field as partition_field
from .scripts import Track

log = logging.getLogger(__name__)


def glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass
class Tracking:
    """The tracking keys of one consumer group, the fence tokens of the partitions this
    instance owns, and which outbox entries the current transaction wrote."""

    keys: KeySpace
    group_id: str
    fence_key: str
    tokens: dict[TopicPartition, str] = field(default_factory=dict)
    written: dict[str, list[int]] = field(default_factory=dict)

    def for_record(self, record: ConsumerRecord, workspace_id: str) -> Track:
        """The tracking of `record` in `workspace_id`, guarded by its partition's fence."""
        base = self.keys.workspace(workspace_id, "eos", self.group_id, record.topic, str(record.partition))
        outbox = base + ":out"
        self.written.setdefault(outbox, []).append(record.offset)
        tp = TopicPartition(record.topic, record.partition)
        return Track(base, outbox, self.fence_key, partition_field(tp), self.tokens.get(tp, ""))

    def patterns(self, tp: TopicPartition) -> list[str]:
        """SCAN patterns matching the tracking and outbox keys of `tp` in every workspace."""
        tail = glob_escape(":".join(("eos", self.group_id, tp.topic, str(tp.partition))))
        head = glob_escape(self.keys.service_wide(""))
        return [f"{head}*:{tail}", f"{head}*:{tail}:out"]

    def begin(self) -> None:
        """A new transaction: what an earlier, failed one wrote stays in the outbox for its replay."""
        self.written = {}

    async def forget_published(self, client: aioredis.Redis) -> None:
        """Drop the outbox entries of the transaction just committed; replays never reach them
        again. Best effort: an entry left behind is garbage, never published twice, so a
        failure here must not send committed records round again."""
        written, self.written = self.written, {}
        if not written:
            return
        pipe = client.pipeline(transaction=False)
        for outbox, offsets in written.items():
            pipe.hdel(outbox, *offsets)
        try:
            await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - best effort after a commit, see above
            log.warning("outbox entries of a committed batch not dropped (%s); they stay as garbage",
                        type(exc).__name__)
