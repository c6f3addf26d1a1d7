"""The stream processor when Kafka and Redis misbehave without crashing (SPEC §6): outputs
the broker refuses, topics created with the limits producers rely on, and Kafka and Redis
out of step (a topic recreated, Redis restored behind Kafka)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cohort_shared.kafka import MAX_MESSAGE_BYTES, ensure_topics, make_consumer, make_producer
from cohort_shared.publishing import partition_for
from cohort_shared.settings import CommonSettings
from cohort_shared.stream.outgoing import Outgoing, decode_outputs
from cohort_shared.stream.processor import TransactionalProcessor
from cohort_shared.stream.scripts import TrackedScript
from cohort_shared.testing import eventually, read_topic, unique

pytestmark = pytest.mark.integration
DYNAMIC_TOPIC_CONFIG = 1  # the config source of a topic-level override
KEY = b"w"
PARTITION = partition_for(KEY, 3)  # every record here is keyed KEY; test topics have 3 partitions

RUNNING_TOTAL = """
local function apply()
  local total = redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]))
  return {{topic = 'membership.changes', key = 'w', value = {total = total, add = tonumber(ARGV[2])}}}
end
"""


async def admin_for(settings: CommonSettings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    return admin


async def topic_configs(settings: CommonSettings, topic: str) -> dict[str, tuple[str, int]]:
    admin = await admin_for(settings)
    try:
        (answer,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {name: (value, source) for _, _, _, _, entries in answer.resources for name, value, _, source, *_ in entries}


async def set_max_message_bytes(settings: CommonSettings, topic: str, size: int) -> None:
    admin = await admin_for(settings)
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(size)})])
    finally:
        await admin.close()


async def send(settings: CommonSettings, topic: str, values: list[bytes]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=KEY)
    finally:
        await producer.stop()


async def committed(settings: CommonSettings, group: str, tp: TopicPartition) -> int | None:
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(tp)
    finally:
        await consumer.stop()


async def test_topics_accept_what_producers_may_send(common_settings, kafka_topics):
    for topic in (common_settings.topics.cohort_changes, common_settings.topics.identity_profiles):
        configs = await topic_configs(common_settings, topic)
        assert configs["max.message.bytes"] == (str(MAX_MESSAGE_BYTES), DYNAMIC_TOPIC_CONFIG)
        assert configs["min.insync.replicas"] == ("1", DYNAMIC_TOPIC_CONFIG)  # one broker here: RF 1, min ISR 1


async def test_replication_settings_reach_the_topics(stack_env):
    settings = CommonSettings(**{**stack_env, "TOPIC_REPLICATION_FACTOR": "1", "TOPIC_MIN_INSYNC_REPLICAS": "1"})
    topic = settings.topics.membership_changes
    await ensure_topics(settings, [topic])
    admin = await admin_for(settings)
    try:
        (described,) = await admin.describe_topics([topic])
        assert {len(p["replicas"]) for p in described["partitions"]} == {1}
        assert (await topic_configs(settings, topic))["min.insync.replicas"] == ("1", DYNAMIC_TOPIC_CONFIG)
        with pytest.raises(Exception, match="(?i)replication"):  # more replicas than brokers: refused, not guessed
            await ensure_topics(CommonSettings(**{**stack_env, "TOPIC_REPLICATION_FACTOR": "3"}), [topic + "-rf3"])
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_outputs_the_broker_refuses_are_never_committed(common_settings, kafka_topics, redis_client):
    """A record the output topic refuses (too large: not retriable for the producer) must
    not be lost: its input's offset stays uncommitted and the batch is read again until an
    operator fixes the topic, then the output goes out, once."""
    topics = common_settings.topics
    await set_max_message_bytes(common_settings, topics.membership_changes, 1024)
    await send(common_settings, topics.identity_events, [b"1", b"2", b"3"])
    group = unique("g-")

    async def big_outputs(tp, records, tracking):
        return [Outgoing(topics.membership_changes, b"w", r.value * 2000) for r in records]

    processor = TransactionalProcessor(common_settings, redis_client, service="test", group_id=group,
                                       topics=[topics.identity_events], handler=big_outputs, instance_id="i1")
    await processor.start()
    try:
        await eventually(lambda: _state(processor), until=lambda s: s == "retrying", timeout=30)
        assert await committed(common_settings, group, TopicPartition(topics.identity_events, PARTITION)) is None
        await set_max_message_bytes(common_settings, topics.membership_changes, MAX_MESSAGE_BYTES)
        out = await read_topic(common_settings.kafka_bootstrap_servers, topics.membership_changes, expected=3,
                               timeout=30, settle=1.0)
    finally:
        await processor.stop()
    assert sorted(r.value[:1] for r in out) == [b"1", b"2", b"3"] and len(out) == 3


async def _state(processor: TransactionalProcessor) -> str:
    return processor.state


def total_handler(settings: CommonSettings, client, script: TrackedScript):
    async def handle(tp, records, tracking):
        await script.ensure_loaded()
        pipe = client.pipeline(transaction=False)
        for record in records:
            script.queue(pipe, tracking.for_record(record, "w"), record.offset,
                         [f"{settings.redis_key_prefix}total:{{w}}"], [int(record.value)])
        return [o for raw in await pipe.execute() for o in decode_outputs(raw, settings.topics)]
    return handle


def processor_for(settings, client, group, topic) -> TransactionalProcessor:
    return TransactionalProcessor(settings, client, service="test", group_id=group, topics=[topic],
                                  handler=total_handler(settings, client, TrackedScript(client, RUNNING_TOTAL)),
                                  instance_id="i1")


async def run_until_outputs(settings, processor, expected: int) -> list[int]:
    await processor.start()
    try:
        records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.membership_changes,
                                   expected=expected, timeout=30, settle=0.5)
    finally:
        await processor.stop()
    return [orjson.loads(r.value)["total"] for r in records]


async def test_a_recreated_topic_is_reported_not_skipped_until_accepted(common_settings, kafka_topics, redis_client):
    """Kafka's offsets restart at 0 in a recreated topic while Redis still tracks the old
    ones: reading on would silently skip the new records up to the old position."""
    topics, group = common_settings.topics, unique("g-")
    source = topics.identity_events
    await send(common_settings, source, [b"1", b"2", b"3", b"4"])
    assert await run_until_outputs(common_settings, processor_for(common_settings, redis_client, group, source), 4) \
        == [1, 3, 6, 10]

    admin = await admin_for(common_settings)
    try:
        await admin.delete_topics([source, topics.membership_changes])
        await eventually(lambda: admin.list_topics(), until=lambda names: source not in names)
        await admin.create_topics([NewTopic(source, 3, 1), NewTopic(topics.membership_changes, 3, 1)])
    finally:
        await admin.close()
    await send(common_settings, source, [b"100", b"200"])

    processor = processor_for(common_settings, redis_client, group, source)
    await processor.start()
    try:
        status = await eventually(lambda: _status(processor), until=lambda s: s["diverged"], timeout=30)
        (found,) = status["diverged"]
        assert (found["kind"], found["partition"], found["redis_applied"], found["kafka_committed"]) \
            == ("kafka_behind", PARTITION, 3, None)
        assert not processor.ready
        assert await processor.ledger.divergences() == [found]
        nothing = await read_topic(common_settings.kafka_bootstrap_servers, topics.membership_changes,
                                   expected=0, timeout=0, settle=1.0)
        assert nothing == []  # held back, not skipped and not guessed
        assert await processor.ledger.request_repair(TopicPartition(source, PARTITION), "accept")
        out = await read_topic(common_settings.kafka_bootstrap_servers, topics.membership_changes,
                               expected=2, timeout=30, settle=0.5)
        await eventually(lambda: _status(processor), until=lambda s: not s["diverged"])
        assert await processor.ledger.divergences() == []
    finally:
        await processor.stop()
    assert [orjson.loads(r.value)["total"] for r in out] == [110, 310]


async def _status(processor: TransactionalProcessor) -> dict:
    return processor.status()


async def test_redis_behind_kafka_is_reported_and_reapplied(common_settings, kafka_topics, redis_client):
    """Redis restored from an older state (or failed over to a lagging replica) while Kafka
    kept its committed offsets: the effects in between are gone. Detected at assignment,
    held back, and on the operator's word re-applied from Redis's position."""
    topics, group = common_settings.topics, unique("g-")
    source = topics.identity_events
    await send(common_settings, source, [b"1", b"2", b"3"])
    assert await run_until_outputs(common_settings, processor_for(common_settings, redis_client, group, source), 3) \
        == [1, 3, 6]
    async for key in redis_client.scan_iter(match=f"{common_settings.redis_key_prefix}*"):
        await redis_client.delete(key)  # Redis as it was before any of it
    await send(common_settings, source, [b"10"])

    processor = processor_for(common_settings, redis_client, group, source)
    await processor.start()
    try:
        status = await eventually(lambda: _status(processor), until=lambda s: s["diverged"], timeout=30)
        (found,) = status["diverged"]
        assert (found["kind"], found["redis_applied"], found["kafka_committed"]) == ("redis_behind", None, 3)
        assert await processor.ledger.request_repair(TopicPartition(source, PARTITION), "reapply")
        out = await read_topic(common_settings.kafka_bootstrap_servers, topics.membership_changes,
                               expected=3 + 4, timeout=30, settle=0.5)
    finally:
        await processor.stop()
    # The first three come out again (a real service's events keep their event_id), then the new one.
    assert [orjson.loads(r.value)["total"] for r in out] == [1, 3, 6, 1, 3, 6, 16]
    assert int(await redis_client.get(f"{common_settings.redis_key_prefix}total:{{w}}")) == 16
