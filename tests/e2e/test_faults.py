"""Faults that are not crashes (SPEC §6), on the services as separate processes: Redis unable
to write (read-only after a failover, or full), a workspace parking without end, identity
entries skipped after their 202, and a processing loop that cannot go on.

The stack here has a Redis of its own, so a test can fail it without touching the shared one.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from cohort_shared.testing import PrivateRedis, ServiceProcesses, eventually, free_port, read_topic, unique
from cohort_shared.topics import dlq_name

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
STREAM_SERVICES = ("identity_resolution", "segment_store")
PARK_CAP = 50


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap, redis, tmp_path_factory):
    test_id = unique("f")
    services = ServiceProcesses.configure(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "REDIS_URL": redis.url,
            "TOPIC_PREFIX": f"{test_id}.",
            "REDIS_KEY_PREFIX": f"{test_id}:",
            "TOPIC_PARTITIONS": "3",
            "IDENTITY_MAX_PARKED_PER_WORKSPACE": str(PARK_CAP),
        },
        tmp_path_factory.mktemp("fault-logs"),
    )
    try:
        services.start_all()
        yield services
    finally:
        services.stop_all()


@pytest.fixture
async def client(stack, workspace_client):
    c = workspace_client(stack, unique("w"))
    await c.new_key()
    yield c
    await c.close()


def probe(url: str, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


async def health(stack: ServiceProcesses, service: str) -> tuple[int, int]:
    url = stack.urls[service]
    return await asyncio.to_thread(probe, url, "/healthz"), await asyncio.to_thread(probe, url, "/readyz")


async def dead_letters(stack: ServiceProcesses) -> dict[str, int]:
    prefix = stack.env["TOPIC_PREFIX"]
    found = {}
    for topic in ("cohort.changes", "identity.events", "cohort.meta", "membership.resolved",
                  "membership.unmatched", "identity.merges", "identity.profiles"):
        records = await read_topic(stack.env["KAFKA_BOOTSTRAP_SERVERS"], dlq_name(prefix + topic),
                                   expected=0, timeout=0, settle=1.0)
        if records:
            found[topic] = len(records)
    return found


@pytest.mark.parametrize("fault", ["read_only", "full"])
async def test_redis_unable_to_write_delays_the_changes_and_loses_none(fault, client, stack, redis):
    users = [f"u{i}" for i in range(300)]
    await client.profiles("track", {"attributes": [{"external_id": u} for u in users]})
    await client.user_id(f"external_id:{users[-1]}")
    await client.name_cohort("c1", "Churn risk")
    # The stream services are away while the changes are accepted, and come back while Redis
    # cannot take a write: every batch they read meets the fault.
    for service in STREAM_SERVICES:
        stack.stop(service)
    for start in range(0, len(users), 100):
        await client.change("c1", {"user_ids": users[start:start + 100]})
    getattr(redis, fault)()
    try:
        answer = await client.partner("/cohorts/users", {"cohort_id": "c1", "cohort_changes": [{"user_ids": ["u1"]}]})
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] and answer.json()["message"]
        for service in STREAM_SERVICES:
            stack.start(service)
        for service in STREAM_SERVICES:  # alive, waiting for Redis, not ready
            await eventually(lambda s=service: health(stack, s), until=lambda h: h == (200, 503), timeout=60)
    finally:
        redis.writable() if fault == "read_only" else redis.roomy()

    cohort = await eventually(lambda: client.cohort("c1"), until=lambda c: c.get("member_count") == 300, timeout=90)
    assert cohort["sync_report"]["applied"] == 300
    for service in STREAM_SERVICES:
        await eventually(lambda s=service: health(stack, s), until=lambda h: h == (200, 200), timeout=60)
    assert await dead_letters(stack) == {}


async def test_a_workspace_parks_at_most_its_cap(client):
    later = [f"later{i}" for i in range(PARK_CAP + 10)]
    await client.name_cohort("c2", "Later")
    await client.change("c2", {"user_ids": later})
    cohort = await eventually(lambda: client.cohort("c2"),
                              until=lambda c: sum(c.get("sync_report", {}).get("unmatched", {}).values()) == len(later))
    assert cohort["sync_report"]["unmatched"] == {"unknown_external_id": PARK_CAP, "parking_full": 10}
    await client.profiles("track", {"attributes": [{"external_id": u} for u in later]})
    cohort = await eventually(lambda: client.cohort("c2"), until=lambda c: c.get("member_count") == PARK_CAP)
    assert cohort["sync_report"]["applied"] == PARK_CAP
    assert await client.members("c2") == set(later[:PARK_CAP])


async def test_identity_entries_skipped_after_their_202_are_reported(client):
    await client.profiles("track", {"attributes": [{"external_id": "known"}]})
    answer = await client.admin("POST", "ingest", "/users/alias/new", {"user_aliases": [
        {"external_id": "nobody", "alias_name": "a@x.com", "alias_label": "email"},
        {"external_id": "known", "alias_name": "k@x.com", "alias_label": "email"},
    ]})
    assert answer.status_code == 202 and answer.json()["accepted"] == 2
    request_id = answer.json()["request_id"]
    report = await eventually(lambda: client.admin("GET", "identity_resolution", f"/identity-requests/{request_id}"),
                              until=lambda a: a.status_code == 200)
    assert report.json()["entries"] == 2 and report.json()["skipped"] == 1
    assert report.json()["skipped_entries"] == [{"index": 0, "reason": "unknown_external_id"}]
    summary = await client.admin("GET", "identity_resolution", "/identity-report")
    assert summary.json() == {"skipped_by_reason": {"unknown_external_id": 1}}
    unknown = await client.admin("GET", "identity_resolution", f"/identity-requests/{'0' * 32}")
    assert unknown.status_code == 404 and "not applied yet" in unknown.json()["message"]


async def test_a_processor_that_cannot_go_on_ends_its_process(stack, client):
    """Two processes given one INSTANCE_ID fence each other (transactional ID, static group
    member). The first may rebuild its clients a few times; the second, started later, may
    not rebuild at all: once the first's rebuild fences it, its loop cannot go on, so it
    exits with code 70 instead of serving /healthz on a dead loop, and the first goes on.
    (Two twins with the same small budget can both run out, depending on timing.)"""
    ports = {name: free_port() for name in ("twin-a", "twin-b")}
    stack.start("segment_store", "twin-a", INSTANCE_ID="twin", STREAM_MAX_RESTARTS="5",
                SEGMENT_PORT=str(ports["twin-a"]))
    stack.wait_ready("twin-a", url=f"http://127.0.0.1:{ports['twin-a']}")
    stack.start("segment_store", "twin-b", INSTANCE_ID="twin", STREAM_MAX_RESTARTS="0",
                SEGMENT_PORT=str(ports["twin-b"]))
    users = [f"t{i}" for i in range(50)]
    await client.profiles("track", {"attributes": [{"external_id": u} for u in users]})

    async def exit_codes():
        for user in users:  # traffic for both twins to trip over
            await client.change("c3", {"user_ids": [user], "should_remove": user.endswith("7")})
        return {name: stack.processes[name].poll() for name in ports}

    codes = await eventually(exit_codes, until=lambda c: c["twin-b"] is not None, timeout=180, every=1)
    assert codes == {"twin-a": None, "twin-b": 70}, codes
    survivor = "twin-a"
    await eventually(lambda: asyncio.to_thread(probe, f"http://127.0.0.1:{ports[survivor]}", "/readyz"),
                     until=lambda status: status == 200, timeout=60)
    stack.stop(survivor)
