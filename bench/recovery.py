"""Start-up with 100,000 webhooks' state, two ways: delivery as built (definitions and
delivery state in Redis, read lazily), and the same records in a faust table backed by a
changelog topic, which faust replays into memory before its agents run. And a restart
after SIGKILL: as a static group member, delivery takes its partitions back at once rather
than after the session timeout a rebalance would wait for the dead member.

    python bench/recovery.py [--webhooks 100000]

Needs KAFKA_BOOTSTRAP_SERVERS and REDIS_URL (make bench starts them, and runs this as its
last part); prints both times. The Redis keys it wrote are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import faust
import httpx
import orjson
from aiokafka import AIOKafkaProducer
from cohort_shared.kafka import ensure_topics
from cohort_shared.settings import CommonSettings
from cohort_shared.state.client import connect_state
from cohort_shared.testing import ServiceProcesses, forget_keys, unique

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "delivery"))

from delivery.adapters.definitions_cache import DefinitionsCache  # noqa: E402
from delivery.adapters.layout import Layout  # noqa: E402

PARTITIONS = 12
WORKSPACES = 1000
BATCH = 5000


def webhook_record(i: int) -> dict:
    """A webhook definition (as delivery stores it: the secret sealed, ~0.5 KB) with its
    delivery state."""
    return {"webhook_id": f"wh_{i:032x}", "workspace_id": f"ws{i % WORKSPACES}", "url": f"https://hooks.example.com/{i}",
            "description": "bench", "filter": {"cohort_ids": [f"c{i % 50}"]}, "status": "active",
            "created_at": datetime.now(UTC).isoformat(), "secret": base64.b64encode(secrets.token_bytes(60)).decode(),
            "previous_secret": None, "previous_secret_until": None,
            "stats": {"delivered": i, "last_error": "HTTP 500", "last_error_at": time.time()}}


async def redis_start_up(env: dict[str, str], n: int) -> dict:
    """delivery's start-up (process start to /readyz) with n webhooks and their state in
    Redis, then what the fan-out reads lazily: every workspace's definitions once."""
    settings = CommonSettings(**env)
    client = connect_state(settings, socket_timeout=30)
    layout = Layout(settings.redis_key_prefix)
    try:
        for start in range(0, n, BATCH):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(n, start + BATCH)):
                    record = webhook_record(i)
                    stats = record.pop("stats")
                    pipe.hset(layout.definitions(record["workspace_id"]), record["webhook_id"], orjson.dumps(record))
                    pipe.hset(layout.webhook(record["workspace_id"], record["webhook_id"]).stats,
                              mapping={k: str(v) for k, v in stats.items()})
                await pipe.execute()
        services = ServiceProcesses.configure(env, Path(tempfile.mkdtemp(prefix="recovery-")))
        try:
            started = time.perf_counter()
            services.start("delivery")
            await wait_assigned(services)
            seconds = time.perf_counter() - started
            services.stop("delivery", kill=True)
            started = time.perf_counter()
            services.start("delivery")  # same port, so the same INSTANCE_ID (static member)
            await wait_assigned(services)
            restart_seconds = time.perf_counter() - started
        finally:
            services.stop_all()
        cache = DefinitionsCache(client, settings.redis_key_prefix)
        started = time.perf_counter()
        read = await cache.webhooks_of(f"ws{w}" for w in range(min(n, WORKSPACES)))
        read_seconds = time.perf_counter() - started
        return {"webhooks": n, "seconds_to_ready": round(seconds, 2),
                "seconds_to_ready_after_kill": round(restart_seconds, 2),
                "session_timeout_seconds": settings_session_timeout(env),
                "definitions_read": sum(len(found) for found in read.values()),
                "seconds_to_read_definitions": round(read_seconds, 2)}
    finally:
        await forget_keys(client, settings.redis_key_prefix)
        await client.aclose()


async def wait_assigned(services: ServiceProcesses, timeout: float = 600) -> None:
    """Until delivery's /readyz answers 200 with partitions of membership.changes assigned."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if services.processes["delivery"].poll() is not None:
                raise RuntimeError(f"delivery exited:\n{services.tail('delivery')}")
            try:
                answer = await http.get(f"{services.urls['delivery']}/readyz")
                if answer.status_code == 200 and answer.json()["stream"]["partitions"]:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"delivery not ready with partitions after {timeout} s:\n{services.tail('delivery')}")


def settings_session_timeout(env: dict[str, str]) -> float:
    return int(env.get("DELIVERY_SESSION_TIMEOUT_MS", "15000")) / 1000


async def faust_table_recovery(bootstrap: str, prefix: str, n: int) -> dict:
    """A faust app whose table's changelog holds the same n records: from app start to
    recovery done (faust's agents do not run before)."""
    app_id = f"{prefix}recovery"
    changelog = f"{app_id}-webhooks-changelog"
    source = f"{prefix}recovery.source"
    settings = CommonSettings(kafka_bootstrap_servers=bootstrap, topic_partitions=PARTITIONS)
    await ensure_topics(settings, [source, changelog])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        for start in range(0, n, BATCH):
            for i in range(start, min(n, start + BATCH)):
                record = webhook_record(i)
                # faust's table serializer is JSON for keys as for values
                await producer.send(changelog, orjson.dumps(record), key=orjson.dumps(record["webhook_id"]),
                                    partition=i % PARTITIONS)
            await producer.flush()
    finally:
        await producer.stop()

    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://", topic_partitions=PARTITIONS,
                    web_enabled=False, topic_disable_leader=True, datadir=tempfile.mkdtemp(prefix="faust-"))
    table = app.Table("webhooks", default=None, partitions=PARTITIONS)

    @app.agent(app.topic(source))
    async def on_source(stream):  # tables are recovered for the partitions the agents consume
        async for _ in stream:
            pass

    started = time.perf_counter()
    await app.start()
    try:
        await asyncio.wait_for(app.tables.recovery.completed.wait(), timeout=900)
        seconds = time.perf_counter() - started
        recovered = len(table.data)
    finally:
        await app.stop()
    return {"webhooks": n, "recovered": recovered, "seconds_to_recovered": round(seconds, 2)}


async def measure_recovery(env: dict[str, str], n: int) -> dict:
    """Both start-ups with n webhooks, under fresh topics and keys."""
    run_id = unique("r")
    env = {**env, "TOPIC_PREFIX": f"{run_id}.", "REDIS_KEY_PREFIX": f"{run_id}:", "TOPIC_PARTITIONS": str(PARTITIONS)}
    return {"redis": await redis_start_up(env, n),
            "faust_table": await faust_table_recovery(env["KAFKA_BOOTSTRAP_SERVERS"], f"{run_id}.", n)}


def recovery_rows(r: dict) -> list[str]:
    in_redis, in_table = r["redis"], r["faust_table"]
    n = in_redis["webhooks"]
    return [
        f"| delivery start-up with {n:,} webhooks' state in Redis: process start to ready, partitions "
        f"assigned (s) | {in_redis['seconds_to_ready']} | |",
        f"| the same after SIGKILL, restarted with its INSTANCE_ID (static member; session timeout "
        f"{in_redis['session_timeout_seconds']:g} s) (s) | {in_redis['seconds_to_ready_after_kill']} | "
        f"< session timeout |",
        f"| then every workspace's definitions read once, as the fan-out reads them lazily "
        f"({in_redis['definitions_read']:,} webhooks) (s) | {in_redis['seconds_to_read_definitions']} | |",
        f"| the same {n:,} records in a faust changelog table: app start to recovery done "
        f"({in_table['recovered']:,} recovered) (s) | {in_table['seconds_to_recovered']} | |",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=100_000)
    args = parser.parse_args()
    env = {"KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
           "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), "LOG_LEVEL": "WARNING"}
    result = await measure_recovery(env, args.webhooks)
    print("| measure | value | target |\n| --- | --- | --- |")
    print("\n".join(recovery_rows(result)))


if __name__ == "__main__":
    asyncio.run(main())
