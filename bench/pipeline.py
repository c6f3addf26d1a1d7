"""The pipeline under load: the three services as separate processes, driven over HTTP,
measured by what arrives on `membership.changes`."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterable

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from cohort_shared.state.client import on_every_node, server_info
from cohort_shared.testing import PARTNER_KEYS, ServiceProcesses

WORKSPACE = "bench"
# Topics the stream processors write in Kafka transactions (ingest writes the others).
TRANSACTIONAL = ("membership.resolved", "membership.unmatched", "identity.merges", "identity.profiles",
                 "identity.forwarded", "segment.handovers", "membership.changes")
BATCH = 1000


class ChangeCounter:
    """Counts (and optionally timestamps) `membership.changes` records as they arrive."""

    def __init__(self, bootstrap: str, topic: str, keep_times: bool = False) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                         enable_auto_commit=False, group_id=None, isolation_level="read_committed",
                                         fetch_max_bytes=16 * 1024 * 1024)
        self.count = 0
        self.keep_times = keep_times
        self.arrivals: dict[str, float] = {}
        self.last_at = 0.0
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.getmany(timeout_ms=300)  # positioned at the end before any load
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=20000)
            now = time.perf_counter()
            for batch in batches.values():
                self.count += len(batch)
                self.last_at = now
                if self.keep_times:
                    for record in batch:
                        self.arrivals[orjson.loads(record.value)["external_id"]] = now

    async def wait_for(self, n: int, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while self.count < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"saw {self.count} of {n} change events within {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return self.last_at

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


async def wait_until_caught_up(settings, groups: Iterable[str], timeout: float) -> float:
    """Wait until every consumer group has committed the end of every partition it reads, so
    a measurement that follows starts from an idle pipeline. Returns the seconds waited."""
    from aiokafka.admin import AIOKafkaAdminClient

    started = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, isolation_level="read_committed")
    await admin.start()
    await probe.start()
    try:
        while True:
            behind = 0
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                if committed:
                    ends = await probe.end_offsets(list(committed))
                    # A partition written in transactions ends with a commit marker after the
                    # last record, which no one commits past.
                    behind += sum(max(0, ends[tp] - meta.offset - (1 if tp.topic.endswith(TRANSACTIONAL) else 0))
                                  for tp, meta in committed.items())
            if behind == 0:
                return round(time.perf_counter() - started, 1)
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"consumer groups {list(groups)} still {behind} records behind")
            await asyncio.sleep(0.5)
    finally:
        await probe.stop()
        await admin.close()


class Driver:
    """Talks to the services like an operator and a Mixpanel-style producer would."""

    def __init__(self, services: ServiceProcesses, concurrency: int) -> None:
        self.services = services
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency + 4))
        self.concurrency = concurrency
        self.secret = ""

    async def close(self) -> None:
        await self.http.aclose()

    async def _post(self, url: str, body: dict, headers: dict | None = None) -> httpx.Response:
        for attempt in range(8):
            answer = await self.http.post(url, content=orjson.dumps(body),
                                          headers={"content-type": "application/json", **(headers or {})})
            if answer.status_code < 500 and answer.status_code != 429:
                break
            await asyncio.sleep(float(answer.headers.get("retry-after", 0.2 * 2**attempt)))
        if answer.status_code >= 300:
            raise RuntimeError(f"POST {url} answered {answer.status_code}: {answer.text[:300]}")
        return answer

    async def preload_users(self, n: int) -> None:
        """Identified users u0…u{n-1}, then wait until identity-resolution knows the last one."""
        url = f"{self.services.urls['ingest']}/workspaces/{WORKSPACE}/users/track"
        bodies = ({"attributes": [{"external_id": f"user-{i}"} for i in range(s, min(n, s + BATCH))]}
                  for s in range(0, n, BATCH))
        await self._in_parallel(self._post(url, body, self.services.admin) for body in bodies)
        lookup = f"{self.services.urls['identity_resolution']}/workspaces/{WORKSPACE}/identities/external_id:user-{n - 1}"
        deadline = time.perf_counter() + max(120, n / 2000)
        while (await self.http.get(lookup, headers=self.services.admin)).status_code != 200:
            if time.perf_counter() > deadline:
                raise TimeoutError("identity-resolution did not load the users in time")
            await asyncio.sleep(0.2)

    async def create_key_and_cohort(self, cohort_id: str) -> None:
        if not self.secret:
            answer = await self._post(f"{self.services.urls['ingest']}/workspaces/{WORKSPACE}/data-import-keys", {},
                                      self.services.admin)
            self.secret = answer.json()["data_import_key"]
        await self._post(f"{self.services.urls['ingest']}/partners/mixpanel/cohorts",
                         {**self._keys(), "cohort_id": cohort_id, "name": f"Bench {cohort_id}",
                          "created_at": "2026-11-28T00:00:00Z"})

    def _keys(self) -> dict:
        return {"partner_api_key": PARTNER_KEYS["mixpanel"], "client_secret": self.secret}

    def change_request(self, cohort_id: str, users: Iterable[int], remove: bool = False) -> dict:
        return {**self._keys(), "cohort_id": cohort_id,
                "cohort_changes": [{"user_ids": [f"user-{i}" for i in users], "should_remove": remove}]}

    async def send_changes(self, cohort_id: str, users: range) -> list[float]:
        """Import `users` into the cohort in 1,000-identifier requests; returns each 202's time."""
        url = f"{self.services.urls['ingest']}/partners/mixpanel/cohorts/users"
        requests = (self.change_request(cohort_id, users[s:s + BATCH]) for s in range(0, len(users), BATCH))
        return await self._in_parallel(self._timed(self._post(url, body)) for body in requests)

    @staticmethod
    async def _timed(call) -> float:
        await call
        return time.perf_counter()

    async def _in_parallel(self, calls) -> list:
        calls = iter(calls)
        results: list = []

        async def worker() -> None:
            for call in calls:
                results.append(await call)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return results


async def measure_import(driver: Driver, counter: ChangeCounter, cohort_id: str, n: int) -> dict:
    """Time a cohort of n members from the first request to the last change event."""
    await driver.create_key_and_cohort(cohort_id)
    before = counter.count
    started = time.perf_counter()
    acked = await driver.send_changes(cohort_id, range(n))
    last_event = await counter.wait_for(before + n, timeout=max(300, n / 500))
    seconds = last_event - started
    return {"members": n, "seconds": round(seconds, 3), "changes_per_second": round(n / seconds),
            "http_seconds": round(max(acked) - started, 3)}


async def measure_latency(driver: Driver, counter: ChangeCounter, cohort_id: str, users: range,
                          rate: int, per_request: int = 100) -> dict:
    """At `rate` changes/s, the time from each request's 202 to its change events."""
    await driver.create_key_and_cohort(cohort_id)
    url = f"{driver.services.urls['ingest']}/partners/mixpanel/cohorts/users"
    interval = per_request / rate
    acked: dict[str, float] = {}
    started = time.perf_counter()
    pending = []

    async def send(chunk: range) -> None:
        await driver._post(url, driver.change_request(cohort_id, chunk))
        at = time.perf_counter()
        for i in chunk:
            acked[f"user-{i}"] = at

    for k, s in enumerate(range(users.start, users.stop, per_request)):
        delay = started + k * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(send(range(s, min(users.stop, s + per_request)))))
    await asyncio.gather(*pending)
    await counter.wait_for(len(users), timeout=120)
    latencies = sorted((counter.arrivals[u] - t) * 1000 for u, t in acked.items() if u in counter.arrivals)
    quantile = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)  # noqa: E731
    return {"rate": rate, "changes": len(latencies), "p50_ms": quantile(0.50), "p95_ms": quantile(0.95),
            "p99_ms": quantile(0.99), "mean_ms": round(statistics.fmean(latencies), 1)}


async def redis_background(redis) -> tuple[bool, int]:
    """Whether an AOF rewrite or RDB save runs on any Redis node now, and how many forks
    (rewrites, saves) the nodes have made so far."""
    persistence = await server_info(redis, "persistence")
    busy = any(node.get("aof_rewrite_in_progress") or node.get("rdb_bgsave_in_progress") for node in persistence)
    forks = sum(node["total_forks"] for node in await server_info(redis, "stats"))
    return busy, forks


async def wait_for_redis_background(redis, timeout: float = 180) -> tuple[float, int]:
    """Wait until no Redis node is rewriting its AOF or saving: the rewrites an import set off
    (its AOF doubled) belong to the import, not to the latency run that follows. Returns the
    seconds waited and the forks made so far."""
    started = time.perf_counter()
    while True:
        busy, forks = await redis_background(redis)
        if not busy:
            return round(time.perf_counter() - started, 1), forks
        if time.perf_counter() - started > timeout:
            raise TimeoutError("Redis still rewriting its AOF or saving")
        await asyncio.sleep(0.2)


async def measure_durability(driver: Driver, counter: ChangeCounter, redis, n: int, cpu_of_redis) -> dict:
    """The same import with Redis fsyncing its append-only file once a second (everysec) and
    before answering each write (always), side by side: what each durability mode costs.
    `cpu_of_redis()` reads the Redis server's CPU seconds. Restores the mode it found."""
    found = (await redis.config_get("appendfsync"))["appendfsync"]
    results = {}
    try:
        for mode in ("everysec", "always"):
            await on_every_node(redis, "CONFIG SET", "appendfsync", mode)
            cpu = cpu_of_redis()
            run = await measure_import(driver, counter, f"bench_fsync_{mode}", n)
            run["redis_cpu_seconds_per_million"] = round((cpu_of_redis() - cpu) * 1e6 / n, 1)
            results[mode] = run
    finally:
        await on_every_node(redis, "CONFIG SET", "appendfsync", found)
    results["always_to_everysec"] = round(
        results["always"]["changes_per_second"] / results["everysec"]["changes_per_second"], 2)
    return results

