"""identity-resolution's stream processor on the real Kafka and Redis: records in, outputs
out keyed by user; parked changes applied when their user appears; poison to the DLQ;
a redelivered batch changes nothing."""

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from cohort_shared.redis_store import KeySpace
from cohort_shared.schemas import MembershipResolved, MembershipUnmatched, cohort_key, decode
from cohort_shared.testing import owned_tracking, read_topic
from cohort_shared.topics import dlq_name
from identity_resolution.adapters.identity_script import IdentityScript
from identity_resolution.app import build_processor
from identity_resolution.entrypoints.stream import SERVICE, make_handler
from identity_resolution.settings import IdentitySettings
from identity_resolution.testing import (
    PARTNER,
    WS,
    A,
    D,
    E,
    add,
    alias_new,
    cohort,
    ident,
    identify,
    publish,
    remove,
    track,
    user,
)
from redis.exceptions import ConnectionError as RedisConnectionError

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack_env) -> IdentitySettings:
    return IdentitySettings(**stack_env)


@pytest.fixture
async def processors(settings, kafka_topics, redis_client):
    """Starts processors of the service's consumer group; stops them after the test."""
    started = []

    async def start(instance_id: str = "i1", wrap=None):
        processor = build_processor(settings, redis_client, instance_id)
        if wrap:
            processor.handler = wrap(processor.handler)
        await processor.start()
        started.append(processor)
        return processor

    yield start
    for processor in started:
        await processor.stop()


async def read(settings, topic: str, expected: int, settle: float = 0.0) -> list[ConsumerRecord]:
    return await read_topic(settings.kafka_bootstrap_servers, topic, expected=expected, timeout=30, settle=settle)


async def test_records_in_resolved_and_unmatched_out_keyed_by_user(settings, processors):
    topics = settings.topics
    await processors()
    await publish(settings, [track("t1", E("u1"), D("d1")), alias_new("a1", ("email", "a@x.com", None))])
    await read(settings, topics.identity_profiles, 3)  # the users exist before the changes arrive

    c2_key = cohort_key(WS, PARTNER, "c2")
    await publish(settings, [
        cohort("c1", add(E("u1")), add(D("d1")), add(A("email", "a@x.com")), remove(E("u2")), add(E("null"))),
        (topics.cohort_changes, c2_key, b"{not json"),
        (topics.cohort_changes, c2_key, b'{"type": "cohort_changes_accepted", "workspace_id": "acme"}'),
        cohort("c2", add(E("u1")), cohort_id="c2"),  # same partition, after the poison
    ])
    unmatched = await read(settings, topics.membership_unmatched, 2)
    await read(settings, topics.membership_resolved, 4)
    await publish(settings, [track("t2", E("u2"))])  # u2 appears: its parked removal applies
    resolved = await read(settings, topics.membership_resolved, 5, settle=1.0)

    outcomes = set()
    for record in resolved:
        message = decode("membership.resolved", record.value)
        assert isinstance(message, MembershipResolved) and record.key == message.user_id.encode()
        outcomes.add((message.cohort_id, message.change, ident(message.identifier), message.user_id, message.was_parked, message.source_id))
    assert outcomes == {
        ("c1", "add", "ext:u1", user("t1"), False, "c1:0"),
        ("c1", "add", "dev:d1", user("t1", 1), False, "c1:1"),
        ("c1", "add", "alias:email:a@x.com", user("a1"), False, "c1:2"),
        ("c2", "add", "ext:u1", user("t1"), False, "c2:0"),
        ("c1", "remove", "ext:u2", user("t2"), True, "c1:3"),
    }
    assert len(resolved) == 5

    reasons = set()
    for record in unmatched:
        message = decode("membership.unmatched", record.value)
        assert isinstance(message, MembershipUnmatched) and record.key == cohort_key(WS, PARTNER, "c1")
        reasons.add((ident(message.identifier), message.reason, message.parked_until is not None))
    assert reasons == {("ext:u2", "unknown_external_id", True), ("ext:null", "invalid_identifier", False)}

    dead = await read(settings, dlq_name(topics.cohort_changes), 2)
    assert [r.value for r in dead] == [b"{not json", b'{"type": "cohort_changes_accepted", "workspace_id": "acme"}']
    assert all(dict(r.headers)["dlq.reason"].startswith(b"invalid cohort.changes record") for r in dead)
    assert all(r.key == c2_key for r in dead)


def fail_once_per_topic(failed: set):
    """Apply the batch (effects land in Redis), then crash before the Kafka commit, once per
    input topic: the processor reads the batch again."""

    def wrap(handler):
        async def flaky(tp, records, tracking):
            outputs = await handler(tp, records, tracking)
            if tp.topic not in failed:
                failed.add(tp.topic)
                raise RedisConnectionError("simulated crash after the effect, before the commit")
            return outputs

        return flaky

    return wrap


async def test_a_batch_redelivered_after_a_crash_is_published_once(settings, processors):
    topics = settings.topics
    failed: set = set()
    await processors(wrap=fail_once_per_topic(failed))
    await publish(settings, [cohort("c1", add(E("u5")), add(E("u6")))])
    await read(settings, topics.membership_unmatched, 2)
    await publish(settings, [track("t1", E("u5"), E("u6")), identify("i1", devices=[("u5", "nothing")])])

    resolved = await read(settings, topics.membership_resolved, 2, settle=1.5)
    profiles = await read(settings, topics.identity_profiles, 2)
    unmatched = await read(settings, topics.membership_unmatched, 2)
    assert failed == {topics.cohort_changes, topics.identity_events}
    assert sorted(decode("membership.resolved", r.value).source_id for r in resolved) == ["c1:0", "c1:1"]
    assert len(profiles) == 2 and len(unmatched) == 2


def as_records(topic: str, partition: int, values: list) -> list[ConsumerRecord]:
    records = []
    for offset, value in enumerate(values):
        raw = value if isinstance(value, bytes) else value.to_bytes()
        key = b"k" if isinstance(value, bytes) else value.kafka_key()
        records.append(ConsumerRecord(topic, partition, offset, 0, 0, key, raw, None, len(key), len(raw), []))
    return records


async def redis_state(client, prefix: str) -> dict:
    state = {}
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            state[key] = await client.hgetall(key)
        elif kind == "set":
            state[key] = await client.smembers(key)
        else:
            state[key] = await client.get(key)
    return state


async def test_running_a_batch_twice_changes_nothing(settings, redis_client):
    topics = settings.topics
    keys = KeySpace(settings.redis_key_prefix, SERVICE)
    handler = make_handler(settings, redis_client, IdentityScript(redis_client, keys))
    tracking = await owned_tracking(redis_client, keys, "redelivery", [
        TopicPartition(topics.identity_events, 0), TopicPartition(topics.cohort_changes, 1)])
    events = as_records(topics.identity_events, 0, [
        track("t1", E("u1"), D("d1")), b"poison", alias_new("a1", ("email", "a@x.com", "u1")), track("t2", E("u3")),
    ])
    changes = as_records(topics.cohort_changes, 1, [
        cohort("c1", add(E("u1")), add(E("u2")), add(D("d1")), add(A("email", "a@x.com")), add(E("u3"))),
    ])

    async def run_batch():
        return (
            await handler(TopicPartition(topics.cohort_changes, 1), changes, tracking)
            + await handler(TopicPartition(topics.identity_events, 0), events, tracking)
        )

    first = await run_batch()
    state = await redis_state(redis_client, settings.redis_key_prefix)
    second = await run_batch()
    assert second == first  # the very same bytes: replays hand back the stored outputs
    assert await redis_state(redis_client, settings.redis_key_prefix) == state
    assert [o.topic for o in first].count(dlq_name(topics.identity_events)) == 1
    parked_now = [orjson.loads(o.value) for o in first if o.topic == topics.membership_unmatched]
    assert {(p["identifier"]["value"], p["reason"]) for p in parked_now} == {
        ("u1", "unknown_external_id"), ("u2", "unknown_external_id"), ("d1", "unknown_device_id"),
        ("a@x.com", "unknown_alias"), ("u3", "unknown_external_id"),
    }
    drained = [orjson.loads(o.value) for o in first if o.topic == topics.membership_resolved]
    assert sorted(d["source_id"] for d in drained) == ["c1:0", "c1:2", "c1:3", "c1:4"]
    assert all(d["was_parked"] for d in drained)
