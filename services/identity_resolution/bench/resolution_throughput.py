"""Resolution throughput of identity-resolution, in identifiers per second.

Pre-loads identified users (track requests through the real handler), then resolves
RECORDS cohort.changes records of IDENTIFIERS external IDs each, two ways:
  redis  the batch handler alone on the real Redis: decode, one pipelined round trip of
         Lua calls, the outputs ready to publish (no Kafka);
  kafka  the whole processor on the real broker: records published to cohort.changes,
         timed until every MembershipResolved is committed on membership.resolved.
Uses a fresh topic prefix and Redis key prefix, removed afterwards.

  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python services/identity_resolution/bench/resolution_throughput.py [--records 100] [--identifiers 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from cohort_shared.kafka import ensure_topics
from cohort_shared.redis_store import KeySpace
from cohort_shared.schemas import utc_now
from cohort_shared.testing import owned_tracking
from identity_resolution.adapters.identity_script import IdentityScript
from identity_resolution.app import build_processor, connect_redis
from identity_resolution.entrypoints.stream import SERVICE, make_handler
from identity_resolution.settings import IdentitySettings
from identity_resolution.testing import E, add, cohort, publish, track


def as_records(topic: str, messages: list) -> list[ConsumerRecord]:
    out = []
    for offset, message in enumerate(messages):
        raw, key = message.to_bytes(), message.kafka_key()
        out.append(ConsumerRecord(topic, 0, offset, 0, 0, key, raw, None, len(key), len(raw), []))
    return out


def workload(records: int, identifiers: int, ws: str) -> tuple[list, list]:
    users = [f"user-{n}" for n in range(records * identifiers)]
    tracks = [
        track(f"t{r}", *(E(u) for u in users[r * identifiers:(r + 1) * identifiers])).model_copy(update={"workspace_id": ws})
        for r in range(records)
    ]
    changes = [
        cohort(f"c{r}", *(add(E(u)) for u in users[r * identifiers:(r + 1) * identifiers]), cohort_id=f"cohort-{r % 12}")
        .model_copy(update={"workspace_id": ws, "accepted_at": utc_now()})
        for r in range(records)
    ]
    return tracks, changes


async def bench_redis(settings: IdentitySettings, records: int, identifiers: int, batch: int) -> float:
    client = connect_redis(settings)
    keys = KeySpace(settings.redis_key_prefix, SERVICE)
    handler = make_handler(settings, client, IdentityScript(client, keys))
    topics = settings.topics
    tracking = await owned_tracking(client, keys, "bench", [
        TopicPartition(topics.identity_events, 0), TopicPartition(topics.cohort_changes, 0)])
    tracks, changes = workload(records, identifiers, "bench-redis")
    for start in range(0, records, batch):
        await handler(TopicPartition(topics.identity_events, 0), as_records(topics.identity_events, tracks)[start:start + batch], tracking)
    started = time.perf_counter()
    resolved = 0
    all_changes = as_records(topics.cohort_changes, changes)
    for start in range(0, records, batch):
        outputs = await handler(TopicPartition(topics.cohort_changes, 0), all_changes[start:start + batch], tracking)
        await tracking.forget_published(client)
        resolved += sum(o.topic == topics.membership_resolved for o in outputs)
    elapsed = time.perf_counter() - started
    assert resolved == records * identifiers, resolved
    await client.aclose()
    return elapsed


async def bench_kafka(settings: IdentitySettings, records: int, identifiers: int) -> float:
    client = connect_redis(settings)
    tracks, changes = workload(records, identifiers, "bench-kafka")
    processor = build_processor(settings, client, "bench")
    await processor.start()
    try:
        await publish(settings, tracks)
        await count_committed(settings, settings.topics.identity_profiles, records * identifiers)
        started = time.perf_counter()
        await publish(settings, changes)
        await count_committed(settings, settings.topics.membership_resolved, records * identifiers)
        return time.perf_counter() - started
    finally:
        await processor.stop()
        await client.aclose()


async def count_committed(settings: IdentitySettings, topic: str, expected: int, timeout: float = 600) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    seen, deadline = 0, time.monotonic() + timeout
    try:
        while seen < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: {seen} of {expected} after {timeout} s")
            for batch in (await consumer.getmany(timeout_ms=200, max_records=10000)).values():
                seen += len(batch)
    finally:
        await consumer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--identifiers", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=None, help="records per batch (default IDENTITY_MAX_BATCH_RECORDS)")
    parser.add_argument("--skip-kafka", action="store_true")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    settings = IdentitySettings(TOPIC_PREFIX=f"bench-{tag}.", REDIS_KEY_PREFIX=f"bench-{tag}:")
    batch = args.batch or settings.max_batch_records
    total = args.records * args.identifiers
    rows = []
    try:
        await ensure_topics(settings, settings.topics.all())
        rows.append(("redis (handler + Lua, no Kafka)", await bench_redis(settings, args.records, args.identifiers, batch)))
        if not args.skip_kafka:
            rows.append(("kafka (processor, committed)", await bench_kafka(settings, args.records, args.identifiers)))
    finally:
        await clean_up(settings)
    print(f"\n{args.records} cohort.changes records × {args.identifiers} identifiers = {total} identifiers, "
          f"batches of {batch} records, {os.cpu_count()} CPUs")
    print(f"{'path':34} {'seconds':>8} {'identifiers/s':>14}")
    for name, seconds in rows:
        print(f"{name:34} {seconds:8.2f} {total / seconds:14,.0f}")


async def clean_up(settings: IdentitySettings) -> None:
    client = connect_redis(settings)
    async for key in client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(settings.topics.all())
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
