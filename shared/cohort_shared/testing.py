"""Helpers for tests and the benchmark on the real Kafka and Redis: unique names, reading
topics back, waiting with a deadline instead of sleeping, running the services as
separate processes, and forgetting a run's keys and topics afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from .state.client import keys_starting_with

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A fresh name for a topic prefix, consumer group or key prefix."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0, settle: float = 0.0
) -> list[ConsumerRecord]:
    """Read `topic` from the start (committed transactions only) until `expected` records have
    come or `timeout` passed; then keep reading `settle` seconds more, so a test can see
    records that should not be there."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool] = bool, timeout: float = 20.0, every: float = 0.05
) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s; last result: {result!r}")
        await asyncio.sleep(every)


SERVICES = {"ingest": "INGEST_PORT", "identity_resolution": "IDENTITY_PORT", "segment_store": "SEGMENT_PORT"}
# delivery gets a port and a log like the others but is started only by the tests that want it.
DELIVERY = {"delivery": "DELIVERY_PORT"}
ADMIN_TOKEN = "e2e-admin-token"
# A fixed AES key for delivery's stored secrets in tests (base64 of 32 bytes), never a deployment's.
TEST_DELIVERY_SECRET_KEY = "dGVzdC1vbmx5LWRlbGl2ZXJ5LXNlY3JldC1rZXktMzI="
PARTNER_KEYS = {"mixpanel": "mp-partner-key", "amplitude": "amp-partner-key"}


async def forget_keys(redis, prefix: str) -> int:
    """Delete every key starting with `prefix` (a run's REDIS_KEY_PREFIX), so that runs do not
    pile up in a Redis that outlives them: two chaos runs' and a benchmark's leftovers made a
    later benchmark ~15% slower in every process. (A cluster client scans every primary and
    splits a many-key UNLINK by slot itself.)"""
    forgotten, chunk = 0, []
    async for key in keys_starting_with(redis, prefix):
        chunk.append(key)
        if len(chunk) == 1000:
            forgotten += await redis.unlink(*chunk)
            chunk = []
    if chunk:
        forgotten += await redis.unlink(*chunk)
    return forgotten


async def forget_topics(bootstrap_servers: str, prefix: str) -> int:
    """Delete the topics whose names start with `prefix` (a run's TOPIC_PREFIX): left behind,
    a broker that outlives the runs grew to ~10 GB here and took over two minutes to start."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
        return len(ours)
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies, however it dies, so
    an interrupted run leaves no service consuming behind it (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class ServiceProcesses:
    """The three services as child processes of this one, sharing one environment."""

    env: dict[str, str]
    urls: dict[str, str]
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def configure(cls, base_env: dict[str, str], logs_dir: Path) -> ServiceProcesses:
        """Free ports for each service, the operator token and partner keys set."""
        env = {**os.environ, **base_env}
        env.setdefault("ADMIN_TOKEN", ADMIN_TOKEN)
        env.setdefault("PARTNER_API_KEYS", ",".join(f"{p}={k}" for p, k in PARTNER_KEYS.items()))
        env.setdefault("DELIVERY_SECRET_KEY", TEST_DELIVERY_SECRET_KEY)
        env.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")  # the receivers of tests listen on 127.0.0.1
        urls = {}
        for module, port_var in {**SERVICES, **DELIVERY}.items():
            env[port_var] = str(free_port())
            urls[module] = f"http://127.0.0.1:{env[port_var]}"
        env.setdefault("INGEST_PUBLIC_URL", urls["ingest"])
        env.setdefault("INGEST_SEGMENT_STORE_URL", urls["segment_store"])  # the Braze export's cohorts
        return cls(env, urls, {m: logs_dir / f"{m}.log" for m in {**SERVICES, **DELIVERY}})

    def start_all(self, *, with_delivery: bool = False) -> None:
        modules = [*SERVICES, *DELIVERY] if with_delivery else list(SERVICES)
        for module in modules:
            self.start(module)
        for module in modules:
            self.wait_ready(module)

    def stop_all(self) -> None:
        for module in list(self.processes):
            self.stop(module)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['ADMIN_TOKEN']}"}

    def start(self, module: str, name: str | None = None, **extra_env: str) -> None:
        """Start `module` as process `name` (default: the module), with extra environment."""
        name = name or module
        self.logs.setdefault(name, self.logs[module].with_name(f"{name}.log"))
        with self.logs[name].open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module], env={**self.env, **extra_env}, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def wait_ready(self, module: str, timeout: float = 90.0, url: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[module].poll() is not None:
                raise AssertionError(f"{module} exited at start-up:\n{self.tail(module)}")
            try:
                with urllib.request.urlopen(f"{url or self.urls[module]}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{module} not ready after {timeout} s:\n{self.tail(module)}")

    def stop(self, module: str, kill: bool = False) -> None:
        process = self.processes.pop(module, None)
        if process is None or process.poll() is not None:
            return
        process.kill() if kill else process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def tail(self, module: str, lines: int = 40) -> str:
        text = self.logs[module].read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class PrivateRedis:
    """A redis-server of a test's own (append-only, on a free port), so the test can fail it
    — read-only as after a failover, full, killed — without touching the shared one. Where the
    tests run on a Redis Cluster (REDIS_CLUSTER=true) it is a one-node cluster holding every
    slot, so the services use their cluster client against it too."""

    def __init__(self, directory: Path, cluster: bool | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.cluster = os.environ.get("REDIS_CLUSTER") == "true" if cluster is None else cluster
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # The bus port is named: the default (port + 10000) lies past 65535 for half the free ports.
        cluster = (["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-port", str(free_port())] if self.cluster else [])
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
             *cluster],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        self._wait_until("PONG", "PING")
        if self.cluster and "cluster_state:ok" not in self.cli("CLUSTER", "INFO"):
            self.cli("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            self._wait_until("cluster_state:ok", "CLUSTER", "INFO")

    def _wait_until(self, expected: str, *command: str) -> None:
        deadline = time.monotonic() + 20
        while expected not in self.cli(*command):
            if time.monotonic() > deadline:
                raise AssertionError(f"private redis-server: no {expected!r} from {' '.join(command)}")
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        answer = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return answer.stdout.strip()

    def read_only(self) -> None:
        """As after a failover: writes refused. A single server becomes a replica of a master
        that does not answer; a cluster node refuses REPLICAOF, so it demands a replica it lacks."""
        if self.cluster:
            assert self.cli("CONFIG", "SET", "min-replicas-to-write", "1") == "OK"
        else:
            assert self.cli("REPLICAOF", "127.0.0.1", "1") == "OK"

    def writable(self) -> None:
        if self.cluster:
            assert self.cli("CONFIG", "SET", "min-replicas-to-write", "0") == "OK"
        else:
            assert self.cli("REPLICAOF", "NO", "ONE") == "OK"

    def full(self) -> None:
        """Out of memory for writes: maxmemory below what it uses, nothing may be evicted."""
        used = int(self.cli("INFO", "memory").split("used_memory:")[1].split()[0])
        assert self.cli("CONFIG", "SET", "maxmemory", str(max(1, used // 2))) == "OK"

    def roomy(self) -> None:
        assert self.cli("CONFIG", "SET", "maxmemory", "0") == "OK"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
