"""Dead letters on Kafka: reading every `<topic>.dlq`, and replaying them to the topic they
came from once a fix makes them readable (docs/operations.md#dead-letters).

A replay is exactly once: each dead letter is re-published and the replay's consumer group
(`<TOPIC_PREFIX>cohort-dlq-replay`) moves past it in one Kafka transaction, so running a
replay again (or after a crash) sends only what was not sent yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cohort_shared.kafka import make_consumer, make_producer
from cohort_shared.schemas import decode
from cohort_shared.settings import CommonSettings
from cohort_shared.topics import ALL_TOPICS, dlq_name

REPLAY_GROUP = "cohort-dlq-replay"
REPLAYED_FROM = "dlq.replayed-from"


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # the DLQ topic, full name
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return self.headers.get("dlq.reason", "")

    @property
    def source_topic(self) -> str:
        return self.headers.get("dlq.source.topic", "")

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def summary(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "source": f"{self.source_topic}[{self.headers.get('dlq.source.partition', '?')}]"
                          f"@{self.headers.get('dlq.source.offset', '?')}",
                "service": self.headers.get("dlq.service", ""), "reason": self.reason,
                "bytes": len(self.value or b"")}


def dlq_topics(settings: CommonSettings, base: str | None = None) -> list[str]:
    """The DLQ of every topic (or of `base`, a default topic name), as deployed."""
    if base is not None and base not in ALL_TOPICS:
        raise ValueError(f"unknown topic {base!r}; one of {', '.join(ALL_TOPICS)}")
    return [dlq_name(settings.topics.name(t)) for t in ALL_TOPICS if base in (None, t)]


def still_invalid(settings: CommonSettings, letter: DeadLetter) -> str | None:
    """Why the dead letter's source topic would refuse it today, or None if it now decodes."""
    base = letter.source_topic.removeprefix(settings.topic_prefix)
    if base not in ALL_TOPICS:
        return f"source topic {letter.source_topic!r} is not one of this deployment's topics"
    try:
        decode(base, letter.value or b"")
    except Exception as error:  # noqa: BLE001 - whatever decoding raises, the record is still bad
        return type(error).__name__
    return None


async def _partitions(settings: CommonSettings, topics: list[str]) -> list[TopicPartition]:
    """Every partition of those of `topics` that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    return sorted(TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"])


async def read_dead_letters(settings: CommonSettings, topics: list[str], *, from_replay_position: bool = False,
                            timeout_ms: int = 500) -> list[DeadLetter]:
    """Every dead letter of `topics` up to their current end: from the start, or from where
    the replay group got to."""
    group = settings.group_id(REPLAY_GROUP) if from_replay_position else None
    partitions = await _partitions(settings, topics)
    if not partitions:
        return []
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp) if group else None
            consumer.seek(tp, max(starts[tp], committed or 0))
        letters: list[DeadLetter] = []
        pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=timeout_ms)
            for tp, records in batches.items():
                letters += [DeadLetter(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value,
                                       {k: v.decode(errors="replace") for k, v in (r.headers or ())})
                            for r in records if r.offset < ends[tp]]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return letters
    finally:
        await consumer.stop()


async def read_dead_letter(settings: CommonSettings, topic: str, partition: int, offset: int,
                           timeout_s: float = 10.0) -> DeadLetter | None:
    """One dead letter by its position, or None if there is none there."""
    tp = TopicPartition(topic, partition)
    if tp not in await _partitions(settings, [topic]):
        return None
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if offset >= end or offset < (await consumer.beginning_offsets([tp]))[tp]:
            return None
        consumer.seek(tp, offset)
        record = await asyncio.wait_for(consumer.getone(tp), timeout_s)
        if record.offset != offset:  # the offset held a transaction marker, not a record
            return None
        return DeadLetter(record.topic, record.partition, record.offset, record.timestamp, record.key,
                          record.value, {k: v.decode(errors="replace") for k, v in (record.headers or ())})
    finally:
        await consumer.stop()


@dataclass
class ReplayOutcome:
    replayed: list[DeadLetter] = field(default_factory=list)
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)  # still invalid, stepped over
    blocked: list[tuple[DeadLetter, str]] = field(default_factory=list)  # still invalid, partition stopped here


async def replay_dead_letters(settings: CommonSettings, topics: list[str], *, skip_invalid: bool = False,
                              dry_run: bool = False, on_replayed: Callable[[DeadLetter], None] | None = None,
                              ) -> ReplayOutcome:
    """Re-publish, in order, each dead letter the replay group has not passed yet and that
    now decodes, to its source topic with its original key and bytes. One that still does
    not decode stops its partition's replay (or, with `skip_invalid`, is stepped over and
    stays in the DLQ)."""
    outcome = ReplayOutcome()
    letters = await read_dead_letters(settings, topics, from_replay_position=True)
    if not letters:
        return outcome
    group = settings.group_id(REPLAY_GROUP)
    producer = None if dry_run else make_producer(settings, transactional_id=f"{group}.cli")
    if producer is not None:
        await producer.start()
    stopped: set[tuple[str, int]] = set()
    try:
        for letter in sorted(letters, key=lambda d: (d.topic, d.partition, d.offset)):
            if (letter.topic, letter.partition) in stopped:
                continue
            problem = still_invalid(settings, letter)
            if problem is not None and not skip_invalid:
                outcome.blocked.append((letter, problem))
                stopped.add((letter.topic, letter.partition))
                continue
            if producer is not None:
                async with producer.transaction():
                    if problem is None:
                        headers = [(REPLAYED_FROM, letter.where.encode())]
                        await producer.send(letter.source_topic, letter.value, key=letter.key, headers=headers)
                    await producer.send_offsets_to_transaction(
                        {TopicPartition(letter.topic, letter.partition): letter.offset + 1}, group)
            if problem is None:
                outcome.replayed.append(letter)
                if on_replayed:
                    on_replayed(letter)
            else:
                outcome.skipped.append((letter, problem))
    finally:
        if producer is not None:
            await producer.stop()
    return outcome
