"""The baseline: the raw cost of one Kafka hop in Python on the same broker, in the same run.

An aiokafka producer sends N records shaped like the pipeline's per-user messages (a ~250-byte
JSON value keyed by user, acks=all, idempotent, the same linger and batch size as the services)
and a consumer reads them back; timed from the first send to the last record read.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer
from cohort_shared.kafka import ensure_topics, make_producer
from cohort_shared.settings import CommonSettings


def sample_value(i: int) -> tuple[bytes, bytes]:
    user = f"u{i:023x}"
    value = orjson.dumps({
        "event_id": f"{i:032x}", "workspace_id": "bench", "partner": "mixpanel", "cohort_id": "bench_cohort",
        "user_id": user, "external_id": f"user-{i}", "change": "added", "cause": "cohort_import",
        "occurred_at": "2026-11-28T12:00:00.000000+00:00",
    })
    return user.encode(), value


async def one_hop(settings: CommonSettings, topic: str, n: int) -> dict:
    """Produce n records to `topic` and consume them; returns records/s and seconds."""
    await ensure_topics(settings, [topic])
    records = [sample_value(i) for i in range(n)]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    # Make sure the consumer is positioned before the clock starts.
    await consumer.getmany(timeout_ms=500)
    producer = make_producer(settings)
    await producer.start()
    seen = 0

    async def consume() -> float:
        nonlocal seen
        while seen < n:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                seen += len(batch)
        return time.perf_counter()

    started = time.perf_counter()
    reader = asyncio.create_task(consume())
    for start in range(0, n, 1000):
        futures = [await producer.send(topic, value, key=key) for key, value in records[start:start + 1000]]
        await asyncio.gather(*futures)
    finished = await asyncio.wait_for(reader, timeout=max(120, n / 2000))
    await producer.stop()
    await consumer.stop()
    seconds = finished - started
    return {"records": n, "seconds": round(seconds, 3), "per_second": round(n / seconds)}
