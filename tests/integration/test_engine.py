"""The task engine on the real broker and Redis: each task's state committed once with its
outputs, replays published from the outbox, stateless inputs, fencing and divergence."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import TopicPartition
from cohort_shared.kafka import make_producer
from cohort_shared.publishing import partition_for
from cohort_shared.schemas import Message
from cohort_shared.state.client import connect_state
from cohort_shared.state.writes import WriteSet
from cohort_shared.stream.engine import StreamProcessor
from cohort_shared.stream.service import InputTopic, StreamService, TaskContext, TaskNotReady
from cohort_shared.testing import eventually, forget_keys, read_topic, unique

pytestmark = pytest.mark.integration
KEY = b"w"
PARTITION = partition_for(KEY, 3)


class Amount(Message):
    """A test input: add `n` to a running total."""

    n: int

    def kafka_key(self) -> bytes:
        return KEY


def running_totals(settings) -> StreamService:
    """identity.events: add to the task's total (stateful); cohort.changes: echo (stateless)."""

    async def add(ctx: TaskContext, amounts: list[Amount]) -> None:
        key = ctx.keys.key("total")
        total = int(await ctx.redis.get(key) or 0)
        for amount in amounts:
            total += amount.n
            ctx.emit("membership.changes", orjson.dumps({"total": total, "n": amount.n}), KEY)
        ctx.writes.set(key, total)

    def decode(base: str, record) -> Message:
        body = orjson.loads(record.value)
        return Amount(n=body["n"]) if base == "identity.events" else Echo(n=body["n"])

    async def echo(ctx: TaskContext, echoes: list) -> None:
        for e in echoes:
            ctx.emit("membership.unmatched", orjson.dumps({"echo": e.n}), KEY)

    return StreamService(
        name="engine-test",
        inputs=[InputTopic("identity.events"), InputTopic("cohort.changes", stateful=False)],
        handlers=[((Echo,), echo), ((Amount,), add)],
        decode=decode,
    )


class Echo(Message):
    """A test input of the stateless topic: published back, nothing written."""

    n: int


async def send(settings, topic: str, values: list[int | bytes]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v if isinstance(v, bytes) else orjson.dumps({"n": v}), key=KEY)
    finally:
        await producer.stop()


def processor(settings, client, group, service=None, **options) -> StreamProcessor:
    return StreamProcessor(settings, client, service or running_totals(settings), group_id=group,
                           instance_id=options.pop("instance_id", "i1"), **options)


async def totals(settings, expected: int) -> list[int]:
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.membership_changes,
                               expected=expected, timeout=30, settle=1.0)
    return [orjson.loads(r.value)["total"] for r in records]


@pytest.fixture
async def state(common_settings):
    client = connect_state(common_settings, socket_timeout=5)
    yield client
    async for key in client.scan_iter(match=f"{common_settings.redis_key_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


async def test_state_and_outputs_once_stateless_outputs_and_dead_letters(common_settings, kafka_topics, state):
    topics = common_settings.topics
    await send(common_settings, topics.identity_events, [1, 2, 3, b"not json", 4])
    await send(common_settings, topics.cohort_changes, [7, 8])
    p = processor(common_settings, state, unique("g-"))
    await p.start()
    try:
        assert await totals(common_settings, 4) == [1, 3, 6, 10]
        echoes = await read_topic(common_settings.kafka_bootstrap_servers, topics.membership_unmatched, expected=2)
        assert [orjson.loads(r.value)["echo"] for r in echoes] == [7, 8]
        dead = await read_topic(common_settings.kafka_bootstrap_servers, topics.identity_events + ".dlq", expected=1)
        assert [r.value for r in dead] == [b"not json"]
        assert dict(dead[0].headers)["dlq.reason"].startswith(b"invalid identity.events record")
        await eventually(lambda: _ready(p), timeout=20)
    finally:
        await p.stop()
    keys = p.task_keys(PARTITION)
    assert int(await state.get(keys.key("total"))) == 10
    assert not await state.exists(keys.outbox)  # dropped once Kafka had it


async def _ready(p: StreamProcessor) -> bool:
    return p.ready


async def test_a_batch_applied_but_not_committed_is_published_from_its_outbox(common_settings, kafka_topics, state):
    """The Redis commit went through, the Kafka one did not: the batch comes round again,
    changes nothing, and its stored outputs are published, once."""
    topics = common_settings.topics
    await send(common_settings, topics.identity_events, [1, 2, 3])
    p = processor(common_settings, state, unique("g-"))
    real, failed = p._publish_and_commit, []

    async def fail_once(outputs, offsets):
        if outputs and not failed:
            failed.append(len(outputs))
            raise ConnectionError("the broker went away after the Redis commit")
        await real(outputs, offsets)

    p._publish_and_commit = fail_once
    await p.start()
    try:
        assert await totals(common_settings, 3) == [1, 3, 6]
    finally:
        await p.stop()
    assert failed == [3]
    assert int(await state.get(p.task_keys(PARTITION).key("total"))) == 6


async def test_a_task_is_set_up_in_slices_before_any_of_its_batches(common_settings, kafka_topics, state):
    """A service's setup runs when a task is taken; while it answers "not ready" the task's
    records wait, then every one of them is applied once. Its writes are fenced."""
    topics = common_settings.topics
    await send(common_settings, topics.identity_events, [1, 2, 3])
    service, calls = running_totals(common_settings), []
    add = service.handlers[1][1]

    async def setup(partition: int, write) -> None:
        calls.append(partition)
        if partition != PARTITION:
            return
        writes = WriteSet()
        writes.hincrby(p.task_keys(partition).key("slices"), "done", 1)
        await write(writes)
        if calls.count(partition) < 3:
            raise TaskNotReady(f"slice {calls.count(partition)} of 3")

    async def add_after_setup(ctx: TaskContext, amounts: list) -> None:
        assert calls.count(ctx.partition) == 3, "a batch ran before its task was set up"
        await add(ctx, amounts)

    service.setup, service.handlers = setup, [service.handlers[0], ((Amount,), add_after_setup)]
    p = processor(common_settings, state, unique("g-"), service=service)
    await p.start()
    try:
        assert await totals(common_settings, 3) == [1, 3, 6]
    finally:
        await p.stop()
    assert calls.count(PARTITION) == 3
    assert int(await state.hget(p.task_keys(PARTITION).key("slices"), "done")) == 3
    assert not await state.exists(p.task_keys(PARTITION).outbox)


async def test_a_new_owner_republishes_a_batch_its_predecessor_applied_but_never_committed(
        common_settings, kafka_topics, state):
    topics = common_settings.topics
    group = unique("g-")
    await send(common_settings, topics.identity_events, [1, 2, 3])
    crashed = processor(common_settings, state, group)
    applied = asyncio.Event()

    async def hang(outputs, offsets):
        applied.set()
        await asyncio.Event().wait()  # the process dies here: applied in Redis, not in Kafka

    crashed._publish_and_commit = hang
    await crashed.start()
    await asyncio.wait_for(applied.wait(), 30)
    await crashed.stop()
    assert await state.exists(crashed.task_keys(PARTITION).outbox)

    await send(common_settings, topics.identity_events, [10])
    restarted = processor(common_settings, state, group)
    await restarted.start()
    try:
        assert await totals(common_settings, 4) == [1, 3, 6, 16]
    finally:
        await restarted.stop()


async def test_a_zombie_is_fenced_off_the_state_it_no_longer_owns(common_settings, kafka_topics, state):
    """After another consumer claimed the task, the old owner's commit is refused."""
    topics = common_settings.topics
    group = unique("g-")
    await send(common_settings, topics.identity_events, [1])
    first = processor(common_settings, state, group)
    await first.start()
    try:
        assert await totals(common_settings, 1) == [1]
        keys = first.task_keys(PARTITION)
        await state.set(keys.fence, "someone else")  # as a new owner's claim would
        await send(common_settings, topics.identity_events, [5])
        await eventually(lambda: _retries(first), until=lambda n: n > 0, timeout=20)
        assert int(await state.get(keys.key("total"))) == 1  # nothing written by the zombie
    finally:
        await first.stop()


async def _retries(p: StreamProcessor) -> int:
    from cohort_shared.stream.metrics import RETRIES

    return int(RETRIES.labels(p.group_id, "ownership")._value.get())


async def redis_lost_what_kafka_committed(common_settings, state) -> str:
    """A group that applied [1, 2, 3] and committed them, then Redis lost it all, and a 10
    sent since; the group's ID."""
    topics, group = common_settings.topics, unique("g-")
    await send(common_settings, topics.identity_events, [1, 2, 3])
    p = processor(common_settings, state, group)
    await p.start()
    try:
        assert await totals(common_settings, 3) == [1, 3, 6]
    finally:
        await p.stop()
    await forget_keys(state, common_settings.redis_key_prefix)  # Redis as it was before any of it
    await send(common_settings, topics.identity_events, [10])
    return group


async def test_redis_behind_kafka_is_held_back_then_reapplied(common_settings, kafka_topics, state):
    topics, group = common_settings.topics, await redis_lost_what_kafka_committed(common_settings, state)
    p = processor(common_settings, state, group)
    await p.start()
    try:
        status = await eventually(lambda: _status(p), until=lambda s: s["diverged"], timeout=30)
        (found,) = status["diverged"]
        assert (found["kind"], found["redis_applied"], found["kafka_committed"]) == ("redis_behind", None, 3)
        assert not p.ready
        assert await p.divergences.request_repair(TopicPartition(topics.identity_events, PARTITION), "reapply")
        assert await totals(common_settings, 7) == [1, 3, 6, 1, 3, 6, 16]
        await eventually(lambda: _status(p), until=lambda s: not s["diverged"])
    finally:
        await p.stop()


async def test_a_repair_asked_while_the_divergence_is_found_applies_nothing_read_before_it(
        common_settings, kafka_topics, state):
    """The operator's repair lands in the loop's iteration that found the divergence: the
    records read in it, from Kafka's committed offset, must not be applied once the repair
    has sent the partition back to its start (it once applied the record after the gap on
    empty state: a total of 10)."""
    group = await redis_lost_what_kafka_committed(common_settings, state)
    p = processor(common_settings, state, group)
    found = p.divergences.report

    async def found_then_repaired(divergence) -> None:  # as an operator answering at once
        await found(divergence)
        assert await p.divergences.request_repair(divergence.tp, "reapply")
    p.divergences.report = found_then_repaired
    await p.start()
    try:
        assert await totals(common_settings, 7) == [1, 3, 6, 1, 3, 6, 16]
    finally:
        await p.stop()


async def test_a_recreated_topic_is_held_back_until_accepted(common_settings, kafka_topics, state):
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topics, group = common_settings.topics, unique("g-")
    source = topics.identity_events
    await send(common_settings, source, [1, 2, 3, 4])
    p = processor(common_settings, state, group)
    await p.start()
    try:
        assert await totals(common_settings, 4) == [1, 3, 6, 10]
    finally:
        await p.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=common_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([source, topics.membership_changes])
        await eventually(lambda: admin.list_topics(), until=lambda names: source not in names)
        await admin.create_topics([NewTopic(source, 3, 1), NewTopic(topics.membership_changes, 3, 1)])
    finally:
        await admin.close()
    await send(common_settings, source, [100, 200])
    p = processor(common_settings, state, group)
    await p.start()
    try:
        status = await eventually(lambda: _status(p), until=lambda s: s["diverged"], timeout=30)
        (found,) = status["diverged"]
        assert (found["kind"], found["redis_applied"], found["kafka_committed"]) == ("kafka_behind", 3, None)
        assert await p.divergences.request_repair(TopicPartition(source, PARTITION), "accept")
        assert await totals(common_settings, 2) == [110, 310]
    finally:
        await p.stop()


async def _status(p: StreamProcessor) -> dict:
    return p.status()
