"""What a stream service brings to the engine: its inputs, its decoder and one handler per
message type, each handler working on a `TaskContext` (state keys, writes, outputs, counts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka.structs import ConsumerRecord

from ..schemas import Message
from ..settings import CommonSettings
from ..state.commit import Output
from ..state.keys import TaskKeys
from ..state.writes import WriteSet


@dataclass(frozen=True)
class InputTopic:
    """One input topic, by its default name; `stateful` if handlers write state for it."""

    base: str
    stateful: bool = True


@dataclass
class TaskContext:
    """What a handler works with for one task's messages: where its state lives, the writes
    it adds, the outputs it emits, and counts to record once the batch is committed."""

    partition: int
    keys: TaskKeys
    redis: object
    settings: CommonSettings
    now: datetime
    partitions: dict[str, int]
    """Partition count of each input topic and declared output topic, by default name."""
    writes: WriteSet = field(default_factory=WriteSet)
    outputs: list[Output] = field(default_factory=list)
    counts: dict[object, int] = field(default_factory=dict)
    """Per metric, summed as counted: a batch counts per change, Prometheus is told per batch."""
    after_commit: WriteSet = field(default_factory=WriteSet)
    """Hints written once Kafka has the batch, best effort and unfenced: never state a replay
    depends on (a lost one must only cost some speed)."""

    def emit(self, base_topic: str, value: bytes | None, key: bytes | None = None, partition: int | None = None) -> None:
        """Publish `value` on `base_topic` (behind TOPIC_PREFIX), to `partition` or by `key`."""
        self.outputs.append((self.settings.topics.name(base_topic), partition, key, value))

    def count(self, metric, amount: int = 1) -> None:
        """`metric` (a labelled Prometheus counter) grows by `amount` once the batch commits."""
        if amount:
            self.counts[metric] = self.counts.get(metric, 0) + amount


Handler = Callable[[TaskContext, list], Awaitable[None]]
Decoder = Callable[[str, ConsumerRecord], Message]
FencedWrite = Callable[[WriteSet], Awaitable[None]]
TaskSetup = Callable[[int, FencedWrite], Awaitable[None]]


class TaskNotReady(Exception):
    """A task's setup is under way but unfinished (it works in slices, each within the
    engine's time bound): the task's records wait and the setup runs again shortly."""


@dataclass
class StreamService:
    """What a stream service brings: its name, its inputs, the topics it publishes to by
    partition (whose partition counts handlers need), how a record is decoded, and its
    handlers: (message types, handler) pairs, each called once per task with the task's
    messages of those types, in the order they were read (offset order per partition)."""

    name: str
    inputs: Sequence[InputTopic]
    handlers: Sequence[tuple[tuple[type, ...], Handler]]
    decode: Decoder
    outputs: Sequence[str] = ()
    setup: TaskSetup | None = None
    """Run each time this instance takes a task, before any of the task's batches: given the
    task's partition and a write fenced for this instance (`Commit.write`). Raises
    `TaskNotReady` to be run again."""

    def handled(self, message) -> bool:
        return any(isinstance(message, types) for types, _ in self.handlers)


@dataclass(frozen=True)
class ProfileTombstone:
    """An identity.profiles record without a value: the profile was deleted or merged away."""

    user_id: str


def decode_with_tombstones(base_topic: str, record: ConsumerRecord) -> Message | ProfileTombstone:
    """A record as its message; identity.profiles' tombstones (key, no value) as a
    `ProfileTombstone`. A value-less record on any other topic is a cause for its DLQ."""
    from .. import schemas
    from ..topics import IDENTITY_PROFILES

    if record.value is None:
        if base_topic != IDENTITY_PROFILES or not record.key:
            raise ValueError("a record without a value (only identity.profiles has tombstones)")
        return ProfileTombstone(record.key.decode())
    return schemas.decode(base_topic, record.value)
