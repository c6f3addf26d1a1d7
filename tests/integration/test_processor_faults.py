"""Kafka refusing without crashing (SPEC §6): topics created with the limits producers rely
on, and outputs the broker refuses never committed. (Kafka and Redis out of step, and
replays, are in test_engine.py.)"""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cohort_shared.kafka import MAX_MESSAGE_BYTES, ensure_topics, make_consumer, make_producer
from cohort_shared.publishing import partition_for
from cohort_shared.schemas import Message
from cohort_shared.settings import CommonSettings
from cohort_shared.state.client import connect_state
from cohort_shared.stream.engine import StreamProcessor
from cohort_shared.stream.service import InputTopic, StreamService
from cohort_shared.testing import eventually, read_topic, unique

pytestmark = pytest.mark.integration
DYNAMIC_TOPIC_CONFIG = 1  # the config source of a topic-level override
KEY = b"w"
PARTITION = partition_for(KEY, 3)  # every record here is keyed KEY; test topics have 3 partitions



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
    operator fixes the topic, then the output goes out, once. The output topic is created
    with its small limit (a limit changed later takes effect on the broker a moment after
    the change is acknowledged: the test would race it)."""
    topics = common_settings.topics
    output = topics.name("fault.outputs")
    admin = await admin_for(common_settings)
    try:
        await admin.create_topics([NewTopic(output, 3, 1, topic_configs={"max.message.bytes": "1024"})])
    finally:
        await admin.close()
    await send(common_settings, topics.identity_events, [b"1", b"2", b"3"])
    group = unique("g-")

    async def big_outputs(ctx, messages):
        for message in messages:
            ctx.emit("fault.outputs", message.value * 2000, b"w")

    service = StreamService("fault-test", [InputTopic("identity.events", stateful=False)],
                            [((Raw,), big_outputs)], decode=lambda base, record: Raw(value=record.value))
    client = connect_state(common_settings, socket_timeout=5)
    processor = StreamProcessor(common_settings, client, service, group_id=group, instance_id="i1")
    await processor.start()
    try:
        await eventually(lambda: _state(processor), until=lambda state: state == "retrying", timeout=30)
        assert await committed(common_settings, group, TopicPartition(topics.identity_events, PARTITION)) is None
        await set_max_message_bytes(common_settings, output, MAX_MESSAGE_BYTES)
        out = await read_topic(common_settings.kafka_bootstrap_servers, output, expected=3, timeout=30, settle=1.0)
    finally:
        await processor.stop()
        await client.aclose()
    assert sorted(r.value[:1] for r in out) == [b"1", b"2", b"3"] and len(out) == 3


class Raw(Message):
    value: bytes


async def _state(processor: StreamProcessor) -> str:
    return processor.state


