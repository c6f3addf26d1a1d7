"""Reading the system's final state from outside: Kafka topics read committed from the start,
consumer-group lag, and the wait until the output has settled."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .api import SystemApi
from .fleet import Fleet


async def read_all(bootstrap: str, topic: str, timeout: float = 120) -> list[tuple[int, bytes, dict]]:
    """Every committed record of `topic` up to its last stable offset: (partition, value,
    headers), each partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 * 2**20)
    await consumer.start()
    records: list[tuple[int, bytes, dict]] = []
    try:
        partitions = [TopicPartition(topic, p) for p in (await topic_partitions(bootstrap, [topic]))[topic]]
        if not partitions:
            return records
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout} s")
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records.extend((tp.partition, r.value, dict(r.headers or ())) for r in batch)
    finally:
        await consumer.stop()
    return records


async def topic_partitions(bootstrap: str, topics: list[str]) -> dict[str, list[int]]:
    """Each topic's partition numbers (none for a topic that does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    found = {d["topic"]: [p["partition"] for p in d["partitions"]] for d in described if d["error_code"] == 0}
    return {t: sorted(found.get(t, [])) for t in topics}


async def read_events(bootstrap: str, topic: str, workspace: str) -> list[dict]:
    events = []
    for _, value, _ in await read_all(bootstrap, topic):
        event = orjson.loads(value)
        if event.get("workspace_id") == workspace:
            events.append(event)
    return events


async def offsets(bootstrap: str, topics: list[str], groups: list[str]) -> dict[str, int]:
    """Per topic the sum of its end offsets, and per (group, topic) the sum of committed ones."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await consumer.start()
    await admin.start()
    try:
        result: dict[str, int] = {}
        known = await topic_partitions(bootstrap, topics)
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in known[topic]]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            result[f"end {topic}"] = sum(ends.values())
        for group in groups:
            for tp, committed in (await admin.list_consumer_group_offsets(group)).items():
                key = f"committed {group} {tp.topic}"
                result[key] = result.get(key, 0) + max(0, committed.offset)
        return result
    finally:
        await consumer.stop()
        await admin.close()


def lag(snapshot: dict[str, int], group_topics: dict[str, list[str]]) -> dict[str, int]:
    """Records a group has not committed past, per group (transaction markers count too, so a
    settled transactional input shows a small remainder, never zero)."""
    return {group: sum(max(0, snapshot.get(f"end {t}", 0) - snapshot.get(f"committed {group} {t}", 0)) for t in topics)
            for group, topics in group_topics.items()}


@dataclass
class Settled:
    settled: bool
    seconds: float
    readiness: dict[str, tuple[int | None, int | None]]


async def wait_until_settled(api: SystemApi, fleet: Fleet, bootstrap: str, topics: list[str], groups: list[str],
                             window: float, timeout: float) -> Settled:
    """Every instance ready, then nothing moving (sync reports, member counts, topic ends,
    committed offsets) for `window` seconds, which is longer than a rebalance; or `timeout`.
    A service that stays broken makes this return, never hang."""
    started = time.monotonic()
    deadline = started + timeout
    await fleet.wait_ready(timeout / 2)  # one that never gets ready still leaves time to settle
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        try:
            current = (await api.cohorts(), await offsets(bootstrap, topics, groups))
        except Exception as error:  # noqa: BLE001 - a service answering 5xx is a state too
            current = repr(error)
        if current != last:
            last, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= window:
            return Settled(True, time.monotonic() - started, await fleet.wait_ready(1))
        await asyncio.sleep(2.0)
    return Settled(False, time.monotonic() - started, await fleet.wait_ready(1))
