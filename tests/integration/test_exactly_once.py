"""The tracking/outbox + Kafka-transaction processor on the real broker and Redis."""

import asyncio

import orjson
import pytest
from cohort_shared.kafka import make_producer
from cohort_shared.stream.outgoing import dead_letter, decode_outputs
from cohort_shared.stream.processor import TransactionalProcessor
from cohort_shared.stream.scripts import TrackedScript
from cohort_shared.testing import read_topic, unique
from cohort_shared.topics import dlq_name
from redis.exceptions import ConnectionError as RedisConnectionError

pytestmark = pytest.mark.integration

# A running total per workspace: replaying a record must not add it twice, and must hand
# back the very total it published the first time.
RUNNING_TOTAL = """
local function apply()
  local total = redis.call('INCRBY', KEYS[3], tonumber(ARGV[2]))
  return {{topic = 'membership.changes', key = ARGV[3], value = {total = total, add = tonumber(ARGV[2])}}}
end
"""


def make_handler(settings, redis_client, script, fail_once_after_apply: list[bool]):
    topics = settings.topics

    async def handle(tp, records, tracking):
        await script.ensure_loaded()
        pipe = redis_client.pipeline(transaction=False)
        out = []
        good = []
        for record in records:
            try:
                body = orjson.loads(record.value)
                workspace, amount = body["ws"], int(body["n"])
            except Exception as exc:  # noqa: BLE001
                out.append(dead_letter(record, f"bad record: {exc}", "test"))
                continue
            good.append(record)
            script.queue(pipe, tracking.for_record(record, workspace), record.offset,
                         [f"{settings.redis_key_prefix}total:{{{workspace}}}"], [amount, workspace])
        for raw in await pipe.execute():
            out.extend(decode_outputs(raw, topics))
        if fail_once_after_apply and fail_once_after_apply.pop():
            raise RedisConnectionError("simulated crash after the effect, before the commit")
        return out

    return handle


async def run_until(topic_out, settings, expected, processor):
    await processor.start()
    try:
        return await read_topic(settings.kafka_bootstrap_servers, topic_out, expected=expected, timeout=30, settle=1.0)
    finally:
        await processor.stop()


@pytest.mark.parametrize("fail_once", [False, True])
async def test_each_record_applied_and_published_exactly_once(common_settings, kafka_topics, redis_client, fail_once):
    topics = common_settings.topics
    producer = make_producer(common_settings)
    await producer.start()
    amounts = list(range(1, 41))
    for n in amounts:
        await producer.send(topics.identity_events, orjson.dumps({"ws": "w1", "n": n}), key=b"w1")
    await producer.send(topics.identity_events, b"not json", key=b"w1")
    await producer.send_and_wait(topics.identity_events, orjson.dumps({"ws": "w1", "n": 1000}), key=b"w1")
    await producer.stop()

    script = TrackedScript(redis_client, RUNNING_TOTAL)
    processor = TransactionalProcessor(
        common_settings, redis_client, service="test", group_id=unique("g-"), topics=[topics.identity_events],
        handler=make_handler(common_settings, redis_client, script, [True] if fail_once else []),
        instance_id="i1", max_records=7,
    )
    records = await run_until(topics.membership_changes, common_settings, len(amounts) + 1, processor)
    totals = [orjson.loads(r.value)["total"] for r in records]
    expected = [sum(amounts[: i + 1]) for i in range(len(amounts))] + [sum(amounts) + 1000]
    assert totals == expected  # one partition: every total once, in order, none twice
    assert int(await redis_client.get(f"{common_settings.redis_key_prefix}total:{{w1}}")) == sum(amounts) + 1000

    dead = await read_topic(common_settings.kafka_bootstrap_servers, dlq_name(topics.identity_events), expected=1)
    assert [r.value for r in dead] == [b"not json"]
    assert dict(dead[0].headers)["dlq.reason"].startswith(b"bad record")


async def test_a_restart_resumes_after_the_last_commit(common_settings, kafka_topics, redis_client):
    topics = common_settings.topics
    group = unique("g-")
    script = TrackedScript(redis_client, RUNNING_TOTAL)

    async def send(values):
        producer = make_producer(common_settings)
        await producer.start()
        for n in values:
            await producer.send(topics.identity_events, orjson.dumps({"ws": "w2", "n": n}), key=b"w2")
        await producer.flush()
        await producer.stop()

    def processor():
        return TransactionalProcessor(
            common_settings, redis_client, service="test", group_id=group, topics=[topics.identity_events],
            handler=make_handler(common_settings, redis_client, script, []), instance_id="i1",
        )

    await send([1, 2, 3])
    await run_until(topics.membership_changes, common_settings, 3, processor())
    await send([4, 5])
    records = await run_until(topics.membership_changes, common_settings, 5, processor())
    assert [orjson.loads(r.value)["total"] for r in records] == [1, 3, 6, 10, 15]
    # Published outputs are forgotten: the outbox holds nothing once committed.
    leftovers = [k async for k in redis_client.scan_iter(match=f"{common_settings.redis_key_prefix}*:out")]
    assert [await redis_client.hlen(k) for k in leftovers] == [0] * len(leftovers)


async def test_records_left_in_flight_are_republished_before_anything_newer(common_settings, kafka_topics,
                                                                            redis_client):
    """A crash between the Redis apply and the Kafka commit leaves records applied but not
    published. The next owner must publish them before it applies anything else, from any
    topic: otherwise a user's events come out after events of records applied later."""
    topics = common_settings.topics
    first, second = topics.identity_events, topics.cohort_changes
    group = unique("g-")
    script = TrackedScript(redis_client, RUNNING_TOTAL)

    async def send(topic, values):
        producer = make_producer(common_settings)
        await producer.start()
        for n in values:
            await producer.send(topic, orjson.dumps({"ws": "w3", "n": n}), key=b"w3")
        await producer.flush()
        await producer.stop()

    def processor(handler):
        return TransactionalProcessor(common_settings, redis_client, service="test", group_id=group,
                                      topics=[first, second], handler=handler, instance_id="i1")

    await send(first, [1, 2, 3])
    applied, apply = asyncio.Event(), make_handler(common_settings, redis_client, script, [])

    in_flight = []

    async def apply_then_die(tp, records, tracking):
        await apply(tp, records, tracking)
        in_flight.append(tp)
        applied.set()
        await asyncio.Event().wait()  # never returns: the batch is applied, never committed

    crashed = processor(apply_then_die)
    await crashed.start()
    await asyncio.wait_for(applied.wait(), 30)
    await crashed.stop()
    assert int(await redis_client.get(f"{common_settings.redis_key_prefix}total:{{w3}}")) == 6

    await send(second, [10, 20])
    committed_first_when_second_applied = []

    async def watch(tp, records, tracking):
        if tp.topic == second and not committed_first_when_second_applied:
            committed_first_when_second_applied.append(await restarted.consumer.committed(in_flight[0]))
        return await apply(tp, records, tracking)

    restarted = processor(watch)
    records = await run_until(topics.membership_changes, common_settings, 5, restarted)
    assert [orjson.loads(r.value)["total"] for r in records] == [1, 3, 6, 16, 36]
    assert committed_first_when_second_applied == [3], "the second topic was applied before the replay committed"
