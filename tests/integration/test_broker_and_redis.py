"""The foundation on the real Kafka broker and Redis server."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cohort_shared import schemas
from cohort_shared.examples import EXAMPLES
from cohort_shared.kafka import ensure_topics, make_producer, probe_kafka
from cohort_shared.publishing import BatchPublisher, partition_for
from cohort_shared.redis_store import KeySpace, probe_redis
from cohort_shared.state.client import keys_starting_with
from cohort_shared.state.commit import pack_outbox, unpack_outbox
from cohort_shared.testing import forget_keys, forget_topics, read_topic, unique
from cohort_shared.topics import Topics
from pydantic import SecretStr

pytestmark = pytest.mark.integration


async def test_every_schema_travels_through_the_broker(common_settings, kafka_topics):
    producer = make_producer(common_settings)
    await producer.start()
    try:
        for base, messages in EXAMPLES.items():
            for message in messages:
                await producer.send_and_wait(common_settings.topics.name(base), message.to_bytes(), key=message.kafka_key())
    finally:
        await producer.stop()
    for base, messages in EXAMPLES.items():
        records = await read_topic(common_settings.kafka_bootstrap_servers, common_settings.topics.name(base),
                                   expected=len(messages))
        got = sorted((schemas.decode(base, r.value) for r in records), key=lambda m: m.to_bytes())
        assert got == sorted(messages, key=lambda m: m.to_bytes())
        assert {r.key for r in records} == {m.kafka_key() for m in messages}


@pytest.mark.parametrize("from_outbox", [False, True])
async def test_records_added_together_keep_their_partition_and_order(common_settings, kafka_topics, from_outbox):
    """add_all, as the engine publishes a batch (or a task's stored outbox, republished after
    a crash between the Redis commit and Kafka's): keyed records on their key's partition in
    the order given, across full batches, beside records with a partition, headers, no key
    or a size of their own."""
    topic = common_settings.topics.membership_changes  # 3 partitions in the tests
    records = [(topic, None, f"user-{i % 50}".encode(), b"%d:" % i + b"x" * 300) for i in range(6000)]
    records[10] = (topic, 2, b"user-7", b"10:to partition 2")
    records[20] = (topic, None, b"user-8", b"20:with headers", [("h", b"v")])
    records[30] = (topic, None, None, b"30:no key")
    records[40] = (topic, None, b"user-9", b"40:" + b"y" * 600_000)  # larger than a batch
    if from_outbox:
        records = unpack_outbox(pack_outbox(records))
    producer = make_producer(common_settings)
    await producer.start()
    try:
        publisher = BatchPublisher(producer)
        await publisher.add(topic, b"user-0", b"-1:first, on its own")  # learns the partition count
        await publisher.add_all(records)
        await publisher.flush()
    finally:
        await producer.stop()
    got = await read_topic(common_settings.kafka_bootstrap_servers, topic, expected=len(records) + 1)
    assert len(got) == len(records) + 1
    for record in got:
        if record.key is not None and not record.value.startswith(b"10:"):
            assert record.partition == partition_for(record.key, 3), record.value[:20]
    assert [r.partition for r in got if r.value.startswith(b"10:")] == [2]
    assert [r.headers for r in got if r.value.startswith(b"20:")] == [(("h", b"v"),)]
    for partition in range(3):
        sent = [int(r.value.split(b":")[0]) for r in got if r.partition == partition and r.key is not None]
        assert sent == sorted(sent), f"partition {partition} out of order"


async def test_topics_are_created_with_twelve_partitions_and_profiles_compacted(common_settings):
    settings = common_settings.model_copy(update={"topic_partitions": 12})
    names = settings.topics.all()
    await ensure_topics(settings, names)
    await ensure_topics(settings, names)  # a second call leaves them as they are
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        assert {d["topic"]: len(d["partitions"]) for d in described} == {n: 12 for n in names}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topics.identity_profiles)]
        )
        entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def test_redis_round_trip_and_key_layout(common_settings, redis_client):
    keys = KeySpace(common_settings.redis_key_prefix, "segment-store")
    key = keys.workspace("acme", "cohort", "mp_1")
    assert key == f"{common_settings.redis_key_prefix}segment-store:{{acme}}:cohort:mp_1"
    await redis_client.sadd(key, b"U1", "U2")
    assert await redis_client.smembers(key) == {b"U1", b"U2"}
    assert await probe_redis(redis_client)


async def test_a_runs_keys_and_topics_are_forgotten_and_nothing_else(common_settings, redis_client, kafka_topics):
    """What the benchmark and a passing chaos run do at their end: every key and topic under
    the run's prefixes goes (on every node of a cluster), a neighbour's stay."""
    prefix = common_settings.redis_key_prefix
    ours = [f"{prefix}{{segment-store:{p}}}:seq:acme" for p in range(12)]  # spread over the slots
    neighbour = unique("neighbour:")
    for key in [*ours, neighbour]:
        await redis_client.set(key, 1)
    other_prefix = unique("neighbour") + "."
    other_topics = Topics(other_prefix).all()[:1]
    await ensure_topics(common_settings, other_topics)
    try:
        assert await forget_keys(redis_client, prefix) == len(ours)
        assert await redis_client.exists(*ours) == 0
        assert await redis_client.exists(neighbour) == 1
        assert await forget_topics(common_settings.kafka_bootstrap_servers, common_settings.topic_prefix) == len(
            kafka_topics)
        admin = AIOKafkaAdminClient(bootstrap_servers=common_settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            left = await admin.list_topics()
        finally:
            await admin.close()
        assert not [name for name in left if name.startswith(common_settings.topic_prefix)]
        assert set(other_topics) <= set(left)
    finally:
        await redis_client.delete(neighbour)
        await forget_topics(common_settings.kafka_bootstrap_servers, other_prefix)


async def test_keys_starting_with_takes_glob_characters_in_the_prefix_literally(common_settings, redis_client):
    """A prefix is a name, not a pattern: `run[ab]*?` must not reach `runa-…`'s keys."""
    base = common_settings.redis_key_prefix
    ours = [f"{base}run[ab]*?{{segment-store:{p}}}:rec:acme:0" for p in range(3)]
    neighbours = [f"{base}runa-x", f"{base}runb", f"{base}run\\[ab]"]
    for key in [*ours, *neighbours]:
        await redis_client.set(key, 1)
    try:
        found = {k.decode() async for k in keys_starting_with(redis_client, f"{base}run[ab]*?")}
        assert found == set(ours)
    finally:
        for key in [*ours, *neighbours]:  # one by one: on a cluster they live in different slots
            await redis_client.delete(key)


async def test_readiness_probes_fail_when_nothing_listens(common_settings):
    from cohort_shared.state.client import connect_state

    dead = common_settings.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0"),
                                               "redis_cluster": "false"})
    assert not await probe_redis(connect_state(dead, socket_timeout=1), timeout=1)
    producer = make_producer(common_settings)
    await producer.start()
    try:
        assert await probe_kafka(producer)
    finally:
        await producer.stop()


async def test_a_connection_redis_closed_is_replaced_not_reported(common_settings):
    """A Redis restarted or failed over closes every pooled connection; the next call on one
    must go through on a new connection instead of failing a request."""
    from cohort_shared.state.client import connect_state, is_cluster

    client = connect_state(common_settings, socket_timeout=5)
    killer = connect_state(common_settings, socket_timeout=5)
    key = f"{common_settings.redis_key_prefix}probe"
    try:
        await client.set(key, b"1")
        kill = ("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        if is_cluster(killer):
            killed = sum((await killer.execute_command(*kill, target_nodes=killer.ALL_NODES)).values())
        else:
            killed = await killer.execute_command(*kill)
        assert killed >= 1
        assert await client.get(key) == b"1"
    finally:
        await client.delete(key)
        await client.aclose()
        await killer.aclose()


async def test_pipelined_replies_read_without_timers_match_redis_pys_and_a_paused_redis_still_times_out(
        common_settings, redis_client):
    """The state client's connections (`BufferedReplies`) take replies already buffered without
    arming a timer: every answer and error as redis-py's own reading gives them, and a Redis
    that stops answering still fails the call after socket_timeout."""
    import asyncio

    import redis.asyncio as aioredis
    from cohort_shared.state.client import BufferedReplies, connect_state, is_cluster, on_every_node
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeout

    key = common_settings.redis_key_prefix + "{t}:h"
    await redis_client.hset(key, mapping={str(i): f"v{i}" for i in range(300)})

    async def answers(client) -> list:
        pipe = client.pipeline(transaction=False)
        for i in range(3000):
            pipe.hget(key, str(i % 400))
        pipe.lpush(key, "x")  # WRONGTYPE, kept in place with raise_on_error=False
        pipe.hgetall(key)
        return await pipe.execute(raise_on_error=False)

    fast = connect_state(common_settings, socket_timeout=0.5)
    try:
        pool = fast.nodes_manager.connection_kwargs if is_cluster(fast) else fast.connection_pool.connection_kwargs
        assert (pool.get("connection_class") or fast.connection_pool.connection_class) is BufferedReplies
        got = await answers(fast)
        if not is_cluster(fast):
            plain = aioredis.from_url(common_settings.redis_url.get_secret_value(), socket_timeout=5)
            expected = await answers(plain)
            await plain.aclose()
            assert [str(a) if isinstance(a, Exception) else a for a in got] == [
                str(a) if isinstance(a, Exception) else a for a in expected]
        assert got[:400] == [f"v{i}".encode() if i < 300 else None for i in range(400)]
        assert isinstance(got[3000], ResponseError) and "WRONGTYPE" in str(got[3000])
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await fast.lpush(key, "x")
        await on_every_node(redis_client, "CLIENT PAUSE", "1500", "ALL")  # one name: a cluster routes it
        started = asyncio.get_running_loop().time()
        if is_cluster(fast):  # a cluster client retries a timed-out call itself: it may outlast the pause
            try:
                await fast.hget(key, "1")
            except RedisTimeout:
                pass
            waited = asyncio.get_running_loop().time() - started
            assert waited >= 0.5  # no answer came from a paused Redis: the call waited for one
            await asyncio.sleep(max(0.0, 1.6 - waited))
            assert await fast.hget(key, "1") == b"v1"
        else:
            with pytest.raises(RedisTimeout):
                await fast.hget(key, "1")
            assert asyncio.get_running_loop().time() - started < 1.4
            await asyncio.sleep(1.5)
            assert await fast.hget(key, "1") == b"v1"
    finally:
        await fast.aclose()


async def test_a_read_batch_answers_as_redis_pys_pipeline_and_survives_a_dropped_connection(common_settings,
                                                                                             redis_client):
    from cohort_shared.state.client import connect_state, is_cluster
    from cohort_shared.state.reads import ReadBatch, mget

    tag = common_settings.redis_key_prefix + "{rb}:"
    await redis_client.hset(tag + "h", mapping={"a": "1", "b": "2"})
    await redis_client.set(tag + "s", "x")
    client = connect_state(common_settings, socket_timeout=2)
    try:
        def queue(target):
            target.hmget(tag + "h", ["a", "zz", "b"])
            target.get(tag + "s") if hasattr(target, "get") else target.add("GET", tag + "s")
            target.hget(tag + "h", "b") if hasattr(target, "hget") else target.add("HGET", tag + "h", "b")
        pipe = redis_client.pipeline(transaction=False)
        queue(pipe)
        expected = await pipe.execute()
        batch = ReadBatch(client)
        queue(batch)
        assert await batch.run() == expected == [[b"1", None, b"2"], b"x", b"2"]
        for refused in ("SMEMBERS", "MGET"):
            with pytest.raises(ValueError, match="not a plain read"):
                batch.add(refused, tag + "h")
        if not is_cluster(client):  # a connection killed under it: the reads go again on a new one
            await kill_a_pooled_connection(client, redis_client)
            assert await batch.run() == expected
        keys = [tag + "s", tag + "none", tag + "s"]  # MGET of one slot's keys, on either path
        assert await mget(client, keys) == await redis_client.mget(keys) == [b"x", None, b"x"]
        assert await mget(client, []) == []
    finally:
        await client.aclose()


async def test_script_calls_answer_each_call_reload_a_lost_script_cache_and_survive_a_dropped_connection(
        common_settings, redis_client):
    from cohort_shared.state.client import connect_state, is_cluster
    from cohort_shared.state.lua_script import LuaScript, ScriptCalls

    tag = common_settings.redis_key_prefix + "{sc}:"
    adds = LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    refuses = LuaScript("return redis.error_reply('REFUSED ' .. ARGV[1])")
    client = connect_state(common_settings, socket_timeout=2)
    try:
        def calls() -> ScriptCalls:  # on a cluster the calls run concurrently: each on a key of its own
            batch = ScriptCalls(client)
            batch.add(adds, [tag + "a"], [2])
            batch.add(refuses, [tag + "r"], ["here"])  # an error is that call's answer only
            batch.add(adds, [tag + "b"], [3])
            return batch

        await redis_client.script_flush()  # nothing loaded: every call meets NOSCRIPT first
        first, refused, last = await calls().run()
        assert (first, last) == (2, 3)
        assert "REFUSED here" in str(refused)
        await redis_client.script_flush()  # a failover or restart lost the cache in between
        first, refused, last = await calls().run()
        assert (first, last) == (4, 6) and "REFUSED here" in str(refused)
        rounds = 2
        if not is_cluster(client):  # a connection killed under it: sent again on a new one
            await kill_a_pooled_connection(client, redis_client)
            assert (await calls().run())[::2] == [6, 9]
            rounds = 3
        assert [await redis_client.get(tag + k) for k in "ab"] == [b"%d" % (2 * rounds), b"%d" % (3 * rounds)]
    finally:
        await client.aclose()


async def kill_a_pooled_connection(client, redis_client) -> None:
    """Redis closes the connection `client` would use next, as a restart or failover does."""
    pooled = await client.connection_pool.get_connection()
    await pooled.send_command("CLIENT", "ID")
    own_id = await pooled.read_response()
    await client.connection_pool.release(pooled)
    await redis_client.execute_command("CLIENT", "KILL", "ID", own_id)
