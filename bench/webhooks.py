"""delivery's part of `make bench`: events/s delivered to a local receiver, p99 from a change
to its delivery at 1,000 events/s, and the same with a failing webhook beside it; with, as
the baseline in the same run, plain HTTP POSTs of the same bodies to the same receiver.

The receiver is a process of its own (cohort_shared.webhook_receiver) that verifies every
signature with the `standardwebhooks` package. Change events are published to
`membership.changes` the way segment-store publishes them (transactions keyed by user), so
delivery is measured alone, not behind the pipeline.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import httpx
import orjson
from aiokafka import AIOKafkaProducer
from cohort_shared.kafka import ensure_topics
from cohort_shared.testing import ServiceProcesses, free_port
from pipeline import wait_until_caught_up
from prometheus_client.parser import text_string_to_metric_families

WORKSPACE = "bench-delivery"


def event(user: int, occurred_at: str | None = None) -> dict:
    return {"event_id": uuid.uuid4().hex, "workspace_id": WORKSPACE, "partner": "mixpanel", "cohort_id": "bench",
            "user_id": f"u{user:012d}", "external_id": f"user-{user}", "change": "added", "cause": "cohort_import",
            "occurred_at": occurred_at or datetime.now(UTC).isoformat()}


class Receiver:
    """The receiver process and what it was told and saw."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "cohort_shared.webhook_receiver", "--port",
                                         str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.http = httpx.AsyncClient(timeout=60)

    async def ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                await self.http.get(f"{self.url}/_hooks/none")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        raise RuntimeError("the webhook receiver did not start")

    async def expect(self, name: str, secret: str, status: int = 200) -> None:
        answer = await self.http.put(f"{self.url}/_hooks/{name}", json={"secret": secret, "status": status})
        answer.raise_for_status()

    async def report(self, name: str) -> dict:
        return (await self.http.get(f"{self.url}/_hooks/{name}")).json()

    async def close(self) -> None:
        await self.http.aclose()
        self.process.terminate()
        self.process.wait(timeout=20)


class Operator:
    def __init__(self, services: ServiceProcesses) -> None:
        self.http = httpx.AsyncClient(base_url=f"{services.urls['delivery']}/workspaces/{WORKSPACE}",
                                      headers=services.admin, timeout=60)

    async def create(self, receiver: Receiver, name: str, status: int = 200, cohort: str | None = None) -> str:
        created = (await self.http.post("/webhooks", json={"url": f"{receiver.url}/hooks/{name}",
                                                           "filter": {"cohort_ids": [cohort or name]}})).json()
        await receiver.expect(name, created["secret"], status)
        return created["webhook_id"]

    async def state(self, webhook_id: str) -> dict:
        return (await self.http.get(f"/webhooks/{webhook_id}")).json()

    async def set_status(self, webhook_id: str, status: str) -> None:
        (await self.http.patch(f"/webhooks/{webhook_id}", json={"status": status})).raise_for_status()

    async def wait(self, webhook_id: str, until, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = await self.state(webhook_id)
            if until(state) or time.monotonic() > deadline:
                return state
            await asyncio.sleep(0.05)


async def loop_lag_buckets(services: ServiceProcesses) -> dict[float, float]:
    """delivery's event-loop lag histogram (cumulative counts by upper bound, seconds)."""
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{services.urls['delivery']}/metrics")).text
    return {float(sample.labels["le"]): sample.value for family in text_string_to_metric_families(text)
            if family.name == "delivery_event_loop_lag_seconds" for sample in family.samples
            if sample.name.endswith("_bucket")}


def loop_lag_between(before: dict[float, float], after: dict[float, float]) -> dict:
    """The 50 ms ticks of a phase: how many, how many woke over 50 ms / 250 ms late, and the
    bound every one of them stayed under."""
    diff = {bound: after[bound] - before.get(bound, 0) for bound in after}
    ticks = diff[float("inf")]
    within = min((bound for bound, n in diff.items() if n >= ticks), default=float("inf"))
    return {"ticks": int(ticks), "late_over_50ms": int(ticks - diff[0.05]), "late_over_250ms": int(ticks - diff[0.25]),
            "all_within_ms": None if within == float("inf") else round(within * 1000)}


async def publish(producer: AIOKafkaProducer, topic: str, events: list[dict]) -> None:
    async with producer.transaction():
        for item in events:
            await producer.send(topic, orjson.dumps(item), key=item["user_id"].encode())


def transactional_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"bench-{uuid.uuid4().hex}", linger_ms=5,
                            max_batch_size=512 * 1024)


async def publish_at_rate(bootstrap: str, topic: str, cohort: str, rate: int, seconds: float) -> int:
    """`rate` events a second for `seconds`, in 20 ms transactions, each stamped when sent."""
    producer = transactional_producer(bootstrap)
    await producer.start()
    step, sent, started = 0.02, 0, time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate) + 1
            if due > sent:
                await publish(producer, topic, [{**event(sent + i), "cohort_id": cohort} for i in range(due - sent)])
                sent = due
            await asyncio.sleep(step)
    finally:
        await producer.stop()
    return sent


def percentiles(report: dict) -> dict:
    lags = sorted(at - datetime.fromisoformat(occurred).timestamp() for _, _, occurred, at in report["received"])
    if not lags:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))] * 1000, 1)  # noqa: E731
    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99)}


async def http_baseline(receiver: Receiver, secret_hook: str, bodies: list[tuple[dict, bytes]], concurrency: int) -> float:
    """POSTs/s of the same signed bodies straight to the receiver, `concurrency` at once."""
    from standardwebhooks.webhooks import Webhook

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    await receiver.expect(secret_hook, secret)
    signer = Webhook(secret)
    queue = list(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def worker() -> None:
            while queue:
                item, body = queue.pop()
                now = datetime.now(UTC)
                headers = {"webhook-id": item["event_id"], "webhook-timestamp": str(int(now.timestamp())),
                           "webhook-signature": signer.sign(item["event_id"], now, body.decode()),
                           "content-type": "application/json"}
                async with session.post(f"{receiver.url}/hooks/{secret_hook}", data=body, headers=headers) as r:
                    assert r.status == 200
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


async def measure_delivery(services: ServiceProcesses, settings, events_n: int, rate: int, seconds: float) -> dict:
    topic = settings.topics.membership_changes
    await ensure_topics(settings, [topic])
    services.start("delivery")
    services.wait_ready("delivery")
    receiver, operator = Receiver(), Operator(services)
    bootstrap = settings.kafka_bootstrap_servers
    producer = transactional_producer(bootstrap)
    await receiver.ready()
    await producer.start()
    try:
        results: dict = {"events": events_n}
        # Baseline: plain signed POSTs, as many in flight as delivery allows one webhook.
        bodies = [(item, orjson.dumps({"type": "membership.changed", "timestamp": item["occurred_at"], "data": item}))
                  for item in (event(i) for i in range(events_n))]
        results["http_baseline_per_second"] = round(await http_baseline(receiver, "baseline", bodies, 64))

        # Throughput: events queued while the webhook is paused, then sent on resume. First
        # delivery reads through whatever change events the runs before left on the topic
        # (none matches a webhook), so the fan-out is timed over this run's events alone.
        results["caught_up_s"] = await wait_until_caught_up(settings, [settings.group_id("delivery")], timeout=900)
        lag_before = await loop_lag_buckets(services)
        bulk = await operator.create(receiver, "bulk")
        await operator.set_status(bulk, "paused")
        started = time.perf_counter()
        batch = [{**event(i), "cohort_id": "bulk"} for i in range(events_n)]
        for offset in range(0, events_n, 1000):
            await publish(producer, topic, batch[offset:offset + 1000])
        await operator.wait(bulk, lambda s: s["pending"] >= events_n, timeout=300)
        results["fanout_per_second"] = round(events_n / (time.perf_counter() - started))
        started = time.perf_counter()
        await operator.set_status(bulk, "active")
        state = await operator.wait(bulk, lambda s: s["delivered"] >= events_n, timeout=600)
        elapsed = time.perf_counter() - started
        results["delivered"] = state["delivered"]
        results["per_second"] = round(state["delivered"] / elapsed)
        results["ratio_to_http_baseline"] = round(results["per_second"] / results["http_baseline_per_second"], 2)
        results["loop_lag"] = loop_lag_between(lag_before, await loop_lag_buckets(services))

        # Latency at `rate` events/s, alone and beside a webhook whose endpoint answers 500.
        alone = await operator.create(receiver, "alone")
        sent = await publish_at_rate(bootstrap, topic, "alone", rate, seconds)
        await operator.wait(alone, lambda s: s["delivered"] >= sent, timeout=120)
        results["latency"] = {"rate": rate, "events": sent, **percentiles(await receiver.report("alone"))}

        # The same stream again, now to two webhooks: this one, and one whose endpoint answers 500.
        healthy = await operator.create(receiver, "beside", cohort="pair")
        broken = await operator.create(receiver, "broken", status=500, cohort="pair")
        sent_healthy = await publish_at_rate(bootstrap, topic, "pair", rate, seconds)
        await operator.wait(healthy, lambda s: s["delivered"] >= sent_healthy, timeout=120)
        broken_state = await operator.state(broken)
        results["beside_failing"] = {"rate": rate, "events": sent_healthy, **percentiles(await receiver.report("beside")),
                                     "failing_pending": broken_state["pending"], "failing_delivered": broken_state["delivered"]}
        return results
    finally:
        await producer.stop()
        await operator.http.aclose()
        await receiver.close()
        services.stop("delivery")
