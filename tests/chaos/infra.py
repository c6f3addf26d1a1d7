"""Faults of the infrastructure, from outside: Kafka brokers and Redis killed and restarted
through `deploy/local/stack.sh`, Redis made read-only as after a failover, and poison
records produced straight onto the input topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from .fleet import stack_command, stack_env

INPUT_TOPICS = ("cohort.changes", "cohort.meta", "identity.events", "identity.forwarded", "membership.resolved",
                "membership.unmatched", "identity.merges", "identity.profiles", "segment.handovers")


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Infra:
    def __init__(self, bootstrap: str, redis_url: str, log: Path) -> None:
        self.bootstrap, self.redis_url, self.log = bootstrap, redis_url, log
        self.broker_ports = [int(entry.rsplit(":", 1)[1]) for entry in bootstrap.split(",")]
        self.redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        self.read_only = False
        self.cluster = os.environ.get("REDIS_MODE") == "cluster"

    async def stack(self, *args: str, timeout: float = 180) -> bool:
        """Run one stack.sh command; its output goes to the run's stack log."""
        env = stack_env(self.broker_ports[0], self.redis_port)
        env["KAFKA_BROKERS"] = str(len(self.broker_ports))
        with self.log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(*stack_command(*args), env=env, stdout=out, stderr=out)
            try:
                return await asyncio.wait_for(process.wait(), timeout) == 0
            except TimeoutError:
                process.kill()
                await process.wait()
                return False

    async def kill_broker(self, node: int) -> bool:
        """SIGKILL broker `node`; True once its port is closed (it was ours to kill)."""
        return await self.stack("kafka-kill", str(node)) and not port_open(self.broker_ports[node])

    async def start_broker(self, node: int) -> bool:
        return await self.stack("kafka-start", str(node))

    async def kill_redis(self) -> bool:
        return await self.stack("redis-kill") and not port_open(self.redis_port)

    async def start_redis(self) -> bool:
        return await self.stack("redis-start", timeout=120)

    async def set_read_only(self, on: bool, deadline: float = 60) -> bool:
        """Writes refused, as after a failover, or accepted again; retried while Redis does not
        answer. One server: `REPLICAOF 127.0.0.1 1` (a master that never answers: every write
        refused with READONLY), then `REPLICAOF NO ONE`. A cluster node refuses REPLICAOF, so
        there: `min-replicas-to-write 1` on the node REDIS_URL names (NOREPLICAS on every
        write to its slots), then 0."""
        if self.cluster:
            args = ("CONFIG", "SET", "min-replicas-to-write", "1" if on else "0")
        else:
            args = ("REPLICAOF", "127.0.0.1", "1") if on else ("REPLICAOF", "NO", "ONE")
        until = time.monotonic() + deadline
        while True:
            client = aioredis.from_url(self.redis_url, socket_timeout=3)
            try:
                await client.execute_command(*args)
                self.read_only = on
                return True
            except Exception:  # noqa: BLE001 - Redis restarting: try again until the deadline
                if time.monotonic() > until:
                    return False
                await asyncio.sleep(0.5)
            finally:
                await client.aclose()

    async def restore(self) -> None:
        """Whatever a fault left behind: Redis writable and running, every broker running."""
        if not port_open(self.redis_port):
            await self.start_redis()
        if self.read_only:
            await self.set_read_only(False)
        for node, port in enumerate(self.broker_ports):
            if not port_open(port):
                await self.start_broker(node)

    async def produce_poison(self, prefix: str, run_id: str, deadline: float) -> dict[str, bytes]:
        """One record of garbage bytes (not JSON, not any schema) on every input topic."""
        injected: dict[str, bytes] = {}
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                        request_timeout_ms=10_000)
            try:
                await producer.start()
                for base in INPUT_TOPICS:
                    if prefix + base not in injected:
                        value = b"\xff\xfe\x00chaos-poison " + f"{run_id} {base}".encode() + b" \x80{"
                        await producer.send_and_wait(prefix + base, value, key=b"chaos-poison")
                        injected[prefix + base] = value
                return injected
            except Exception:  # noqa: BLE001 - a broker fault at that moment: try again
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await producer.stop()
