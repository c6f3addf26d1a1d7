"""Kafka helpers on aiokafka: clients with the project's delivery settings, topic creation
and readiness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from . import offset_fetch
from .settings import CommonSettings

log = logging.getLogger(__name__)
offset_fetch.install()  # committed offsets: a coordinator's refusal is not "nothing committed"

# Larger than the biggest request (1,000 identifiers, each up to 512 characters, as JSON).
# Producers may send records this large, topics accept them (`max.message.bytes`, set on
# every topic the services create, whatever the broker's default) and consumers fetch them.
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


def topic_configs(settings: CommonSettings, name: str, replication_factor: int) -> dict[str, str]:
    """The configuration every topic the services create carries."""
    configs = {
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.insync.replicas": str(settings.topic_min_insync_replicas or max(1, replication_factor - 1)),
    }
    if settings.topics.is_compacted(name):
        configs["cleanup.policy"] = "compact"
    return configs


async def replication_factor(settings: CommonSettings, admin: AIOKafkaAdminClient) -> int:
    """TOPIC_REPLICATION_FACTOR, else as many replicas as the cluster has brokers, at most 3."""
    if settings.topic_replication_factor:
        return settings.topic_replication_factor
    brokers = (await admin.describe_cluster()).get("brokers") or [None]
    return min(3, len(brokers))


async def ensure_topics(settings: CommonSettings, names: Iterable[str], partitions: int | None = None) -> None:
    """Create the named topics (and leave existing ones alone), compacting identity.profiles."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        await admin.start()
        factor = await replication_factor(settings, admin)
        wanted = [
            NewTopic(name, num_partitions=partitions or settings.topic_partitions, replication_factor=factor,
                     topic_configs=topic_configs(settings, name, factor))
            for name in names
        ]
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            answer = await admin.create_topics(missing)
            refused = [(name, code, rest) for name, code, *rest in answer.topic_errors
                       if code not in (0, TopicAlreadyExistsError.errno)]  # another instance was first
            if refused:
                name, code, rest = refused[0]
                reason = rest[0] if rest and rest[0] else kafka_errors.for_code(code).__name__
                raise kafka_errors.for_code(code)(f"topic {name} not created: {reason}")
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


async def probe_kafka(producer: AIOKafkaProducer, timeout: float = 2.0) -> bool:
    """Readiness: can this client reach the cluster right now?"""
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False




async def partition_count(settings: CommonSettings, topic: str) -> int:
    """How many partitions `topic` has (what keyed state is partitioned by)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        await admin.start()
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()
