"""Reading `membership.changes` again from a point in time, for a replay: from the offsets
Kafka finds for that time (`offsets_for_times`) up to the ends as they were when the replay
began, read committed. How far back a replay can go is the topic's retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from cohort_shared.kafka import MAX_MESSAGE_BYTES

BATCH_RECORDS = 2000


async def read_since(bootstrap: str, topic: str, since: datetime) -> AsyncIterator[list[bytes]]:
    """Batches of record values written at or after `since`, partition by partition in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=MAX_MESSAGE_BYTES)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
        remaining = set()
        for tp in partitions:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                remaining.add(tp)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=BATCH_RECORDS)
            values = []
            for tp, records in batches.items():
                values += [r.value for r in records if r.offset < ends[tp] and r.value is not None]
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if values:
                yield values
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - a topic not yet in the client's metadata
    return consumer.partitions_for_topic(topic) or set()
