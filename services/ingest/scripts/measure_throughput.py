"""Request throughput of `POST /partners/{partner}/cohorts/users` with 1,000 identifiers each,
against the real broker: starts `python -m ingest` on fresh topics (or uses --url), sends
pre-built bodies with a fixed concurrency, and checks that every 202 is one record on
cohort.changes.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python services/ingest/scripts/measure_throughput.py --requests 500 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import sys
import time
import uuid

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell server cost from client cost."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body(partner_key: str, secret: str, n: int, shape: str, request_no: int) -> bytes:
    ids = [f"user-{request_no}-{i}" for i in range(n)]
    changes = [{"user_ids": [u]} for u in ids] if shape == "entries" else [{"user_ids": ids}]
    return orjson.dumps({"partner_api_key": partner_key, "client_secret": secret,
                         "cohort_id": f"bench_{request_no % 50}", "cohort_changes": changes})


async def records_on(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [p for p in (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic) or []]
        from aiokafka.structs import TopicPartition
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def run(args: argparse.Namespace) -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    admin_token, partner_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    port = free_port()
    env = {**os.environ, "TOPIC_PREFIX": prefix, "REDIS_KEY_PREFIX": prefix, "ADMIN_TOKEN": admin_token,
           "PARTNER_API_KEYS": f"mixpanel={partner_key}", "INGEST_PORT": str(port), "INGEST_HOST": "127.0.0.1",
           "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "ingest", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     limits=httpx.Limits(max_connections=args.concurrency)) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("ingest did not become ready within 60 s")
                await asyncio.sleep(0.2)
            created = await client.post("/workspaces/bench/data-import-keys", headers={"Authorization": f"Bearer {admin_token}"})
            secret = created.json()["data_import_key"]
            bodies = [body(partner_key, secret, args.identifiers, args.shape, i) for i in range(args.requests + args.warmup)]
            headers = {"content-type": "application/json"}
            latencies: list[float] = []
            statuses: dict[int, int] = {}
            queue: asyncio.Queue[bytes] = asyncio.Queue()

            async def worker(measure: bool) -> None:
                while not queue.empty():
                    raw = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post("/partners/mixpanel/cohorts/users", content=raw, headers=headers)
                    if measure:
                        latencies.append(time.perf_counter() - started)
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            for raw in bodies[: args.warmup]:
                queue.put_nowait(raw)
            await asyncio.gather(*(worker(False) for _ in range(args.concurrency)))
            for raw in bodies[args.warmup:]:
                queue.put_nowait(raw)
            started, server_cpu = time.perf_counter(), cpu_seconds(process.pid)
            await asyncio.gather(*(worker(True) for _ in range(args.concurrency)))
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(process.pid) - server_cpu
        on_topic = await records_on(bootstrap, f"{prefix}cohort.changes")
        latencies.sort()
        rate = args.requests / elapsed
        print(f"shape={args.shape} identifiers/request={args.identifiers} requests={args.requests} "
              f"concurrency={args.concurrency}")
        print(f"statuses={statuses} elapsed={elapsed:.2f}s")
        print(f"throughput: {rate:.0f} requests/s = {rate * args.identifiers:,.0f} identifiers/s")
        print(f"latency ms: p50={statistics.median(latencies) * 1000:.1f} "
              f"p95={latencies[int(len(latencies) * 0.95)] * 1000:.1f} p99={latencies[int(len(latencies) * 0.99)] * 1000:.1f}")
        print(f"ingest process CPU: {server_cpu / args.requests * 1000:.1f} ms per request "
              f"({server_cpu / elapsed:.0%} of one core; client and broker share the same machine)")
        print(f"records on cohort.changes: {on_topic} (expected {args.requests + args.warmup}, one per 202)")
    finally:
        process.terminate()
        await process.wait()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([t for t in await admin.list_topics() if t.startswith(prefix)])
        finally:
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--identifiers", type=int, default=1000)
    parser.add_argument("--shape", choices=["entries", "one-entry"], default="entries",
                        help="entries: 1,000 entries of one user_id each (the costlier shape); one-entry: one entry of 1,000")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
