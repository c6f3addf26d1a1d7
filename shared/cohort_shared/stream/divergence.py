"""Comparing what Redis says was applied with what Kafka says was committed, per partition,
when a processor is assigned it.

Normally they agree: Redis applied up to A and Kafka's committed offset (the next to read)
is A + 1; or a batch was applied but its transaction never committed, and Redis's
in-flight mark covers it (the owner republishes it first). Anything else means the two
stores fell out of step, and reading on would silently skip or lose records:

- `redis_behind`: Kafka committed past what Redis holds. Redis lost writes (a host crash
  with `appendfsync everysec`, a failover to a lagging replica, a restore from backup): the
  effects of the records in between are gone while their offsets are committed. Repair:
  `reapply` reads them again from Redis's position; their events come out again with the
  same `event_id`.
- `kafka_behind`: Redis holds progress that Kafka does not: the topic was deleted and
  recreated, or the group's offsets were reset or deleted. Reading on, Redis's tracking would
  silently skip every new record up to its old position. Repair: `accept` forgets Redis's
  tracking of the partition and takes Kafka's position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aiokafka import TopicPartition

Kind = Literal["redis_behind", "kafka_behind"]
Verdict = Literal["in_step", "republish", "redis_behind", "kafka_behind"]


def compare(applied: int | None, committed: int | None, in_flight: int | None) -> Verdict:
    """`applied`: Redis's last applied offset (its progress mark); `committed`: Kafka's next
    offset to read (None if the group has none); `in_flight`: the last offset of the batch
    being applied when the previous owner stopped (None if it finished). The progress mark is
    written after a batch's effects, so it may be one batch behind them, never ahead."""
    uncommitted = in_flight is not None and (committed is None or committed <= in_flight)
    if uncommitted:
        # That batch may be applied in part or in full: republish it before anything else,
        # unless Redis also lost what Kafka committed before it.
        lost = committed is not None and (applied is None or applied + 1 < committed)
        return "redis_behind" if lost else "republish"
    if applied is None and committed in (None, 0):
        return "in_step"  # a partition nobody consumed yet (offset 0: nothing before it to apply)
    if applied is None:
        return "redis_behind"
    if committed is None:
        return "kafka_behind"
    if applied + 1 == committed:
        return "in_step"
    return "redis_behind" if applied + 1 < committed else "kafka_behind"


def after_replay(done: dict, spans: dict) -> tuple[dict, dict]:
    """A batch found applied before: `done` holds Redis's last applied offset of each input
    it tracks, `spans` the (first, last) offsets of each input in the batch read now.
    Returns the offsets to commit with the stored outputs, and where to read each input
    again. An input none of whose records the earlier batch held (it joined the batch later)
    keeps its committed offset: committing its first offset would claim progress Redis never
    recorded, and the next owner would find the two out of step."""
    commit, resume = {}, {}
    for key, (first, _) in spans.items():
        last = done.get(key, -1)
        if last >= first:
            commit[key] = resume[key] = last + 1
        else:
            resume[key] = first
    return commit, resume


@dataclass(frozen=True)
class Divergence:
    """One partition found out of step, as operators see it."""

    group_id: str
    tp: TopicPartition
    kind: Kind
    applied: int | None
    committed: int | None
    detected_at: str

    @classmethod
    def found(cls, group_id: str, tp: TopicPartition, kind: Kind, applied: int | None,
              committed: int | None) -> Divergence:
        return cls(group_id, tp, kind, applied, committed, datetime.now(UTC).isoformat())

    def describe(self) -> str:
        if self.kind == "redis_behind":
            return (f"{self.tp.topic}[{self.tp.partition}]: Kafka committed up to offset {self.committed} but "
                    f"Redis applied only up to {self.applied}; effects in between are missing "
                    f"(repair: reapply from offset {0 if self.applied is None else self.applied + 1})")
        return (f"{self.tp.topic}[{self.tp.partition}]: Redis applied up to offset {self.applied} but Kafka's "
                f"committed offset is {self.committed} (topic recreated or offsets reset; repair: accept "
                f"Kafka's position)")

    def as_json(self) -> dict:
        return {
            "group": self.group_id, "topic": self.tp.topic, "partition": self.tp.partition, "kind": self.kind,
            "redis_applied": self.applied, "kafka_committed": self.committed, "detected_at": self.detected_at,
            "description": self.describe(),
        }
