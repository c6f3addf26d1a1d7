"""Kafka helpers on aiokafka: clients with the project's delivery settings, topic creation,
readiness, and dead-letter publishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from .settings import CommonSettings
from .topics import dlq_name

log = logging.getLogger(__name__)

# Larger than the biggest request (1,000 identifiers, each up to 512 characters, as JSON).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def make_producer(settings: CommonSettings, **overrides) -> AIOKafkaProducer:
    """An idempotent producer that reports success only once every in-sync replica has the write."""
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=512 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=15000,
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(settings: CommonSettings, *topics: str, group_id: str, **overrides) -> AIOKafkaConsumer:
    """A consumer that commits only what the caller says, reading only committed transactions."""
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: CommonSettings, names: Iterable[str], partitions: int | None = None) -> None:
    """Create the named topics (and leave existing ones alone), compacting identity.profiles."""
    topics = settings.topics
    wanted = [
        NewTopic(
            name,
            num_partitions=partitions or settings.topic_partitions,
            replication_factor=1 if _single_broker(settings) else 3,
            topic_configs={"cleanup.policy": "compact"} if topics.is_compacted(name) else {},
        )
        for name in names
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another instance created them first
            await _wait_until_described(admin, [t.name for t in missing])
    finally:
        await admin.close()


async def _wait_until_described(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """create_topics returns before every broker knows the partitions and their leaders;
    wait until it does, so a first produce does not meet NotLeaderForPartition."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(d["error_code"] == 0 and d["partitions"] and all(p["leader"] >= 0 for p in d["partitions"])
               for d in described):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics not ready after {timeout} s: {names}")
        await asyncio.sleep(0.1)


def _single_broker(settings: CommonSettings) -> bool:
    return "," not in settings.kafka_bootstrap_servers


async def probe_kafka(producer: AIOKafkaProducer, timeout: float = 2.0) -> bool:
    """Readiness: can this client reach the cluster right now?"""
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False


async def publish_dead_letter(
    producer: AIOKafkaProducer, record: ConsumerRecord, reason: str, service: str
) -> None:
    """Send a record that cannot be processed to `<topic>.dlq`: the original key and bytes,
    with the reason and origin in headers, so nothing is dropped and the consumer moves on."""
    headers = [
        ("dlq.reason", reason.encode()[:4096]),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.service", service.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
    await producer.send(dlq_name(record.topic), record.value, key=record.key, headers=headers)
