"""One sync end to end against the fake ingest: what is sent, retried, and when the snapshot moves."""

import asyncio
from datetime import datetime

import httpx
import pytest
from cohort_cli.backoff import RetryPolicy
from cohort_cli.http_client import ApiError
from cohort_cli.identifiers import Identifier
from cohort_cli.producer.partner_api import PartnerApi, PartnerCredentials
from cohort_cli.producer.snapshots import SnapshotKey, SnapshotStore
from cohort_cli.producer.sync import CohortSync, sync_cohort

from .conftest import DATA_IMPORT_KEY, PARTNER_KEY

KEY = SnapshotKey("demo", "mixpanel", "mp_1")
JOB = CohortSync("mp_1", "Churn risk", KEY, concurrency=2)
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01)


def members(*ids: str) -> dict[Identifier, None]:
    return {Identifier.external_id(i): None for i in ids}


def api(services, key: str = DATA_IMPORT_KEY) -> PartnerApi:
    hooks = services.hooks()
    client = httpx.AsyncClient(base_url="http://ingest", transport=hooks.transport)
    return PartnerApi(client, PartnerCredentials("mixpanel", PARTNER_KEY, key), POLICY, hooks.sleep)


def sent_ids(call) -> list[tuple[str, bool]]:
    return [(u, bool(e.get("should_remove"))) for e in call.body["cohort_changes"] for u in e.get("user_ids", [])]


async def test_first_sync_sends_all_then_only_the_diff_removes_first(services, tmp_path):
    store = SnapshotStore(tmp_path)
    report = await sync_cohort(api(services), store, JOB, members("u1", "u2", "u3"))
    assert (report.first_sync, report.adds, report.removes, report.accepted, report.requests) == (True, 3, 0, 3, 2)
    named = services.partner_calls("/cohorts")[0].body
    created_at = named.pop("created_at")
    assert named == {
        "partner_api_key": PARTNER_KEY,
        "client_secret": DATA_IMPORT_KEY,
        "cohort_id": "mp_1",
        "name": "Churn risk",
    }
    assert datetime.fromisoformat(created_at).tzinfo is not None
    assert store.load(KEY).members == set(members("u1", "u2", "u3"))

    services.calls.clear()
    report = await sync_cohort(api(services), store, JOB, members("u2", "u3", "u4"))
    assert (report.first_sync, report.adds, report.removes, report.accepted) == (False, 1, 1, 2)
    assert report.number == 2 and store.load(KEY).syncs == 2
    assert [sent_ids(c) for c in services.partner_calls()] == [[("u1", True)], [("u4", False)]]
    assert store.load(KEY).members == set(members("u2", "u3", "u4"))
    assert services.partner_calls("/cohorts")[0].body["created_at"] == created_at  # stable across syncs


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_a_client_error_stops_at_once_and_leaves_the_snapshot(services, tmp_path, status):
    store = SnapshotStore(tmp_path)
    await sync_cohort(api(services), store, JOB, members("u1"))
    before = store.path_for(KEY).read_bytes()
    services.fail("/cohorts/users$", httpx.Response(status, json={"message": "cohort_id must be a valid string"}))
    with pytest.raises(ApiError) as raised:
        await sync_cohort(api(services), store, JOB, members("u2"))
    assert raised.value.status == status and raised.value.attempts == 1
    assert "cohort_id must be a valid string" in str(raised.value)
    assert store.path_for(KEY).read_bytes() == before


async def test_a_wrong_key_fails_before_any_change_is_sent(services, tmp_path):
    store = SnapshotStore(tmp_path)
    with pytest.raises(ApiError, match="Invalid client secret"):
        await sync_cohort(api(services, key="wrong"), store, JOB, members("u1"))
    assert services.partner_calls() == [] and store.load(KEY) is None


async def test_a_failure_mid_way_keeps_the_old_snapshot_and_the_next_sync_resends(services, tmp_path):
    store = SnapshotStore(tmp_path)
    await sync_cohort(api(services), store, JOB, members("u0"))
    services.calls.clear()
    job = CohortSync("mp_1", "Churn risk", KEY, concurrency=1, batch_limit=2)
    unavailable = httpx.Response(503, json={"message": "Kafka cannot take the write"})
    services.fail("/cohorts/users$", httpx.Response(202, json={"accepted": 2}), *[unavailable] * 3)
    with pytest.raises(ApiError, match="Kafka cannot take the write") as raised:
        await sync_cohort(api(services), store, job, members("u1", "u2", "u3", "u4", "u5"))
    assert raised.value.attempts == 3
    assert store.load(KEY).members == set(members("u0"))

    services.calls.clear()
    report = await sync_cohort(api(services), store, job, members("u1", "u2", "u3", "u4", "u5"))
    assert (report.adds, report.removes, report.accepted) == (5, 1, 6)
    assert store.load(KEY).members == set(members("u1", "u2", "u3", "u4", "u5"))


async def test_server_errors_rate_limits_and_lost_connections_are_retried(services, tmp_path):
    services.fail("/cohorts$", httpx.Response(500, json={"message": "boom"}))
    services.fail("/cohorts/users$", httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "slow down"}))
    answer = services.handler
    lost_connections = [httpx.ConnectError("connection refused")]

    def flaky(request):
        if request.url.path.endswith("/users") and lost_connections:
            raise lost_connections.pop()
        return answer(request)

    services.handler = flaky
    report = await sync_cohort(api(services), SnapshotStore(tmp_path), JOB, members("u1"))
    assert (report.accepted, report.requests, report.retries) == (1, 2, 3)
    sleeps = [c.body for c in services.calls if c.method == "SLEEP"]
    assert len(sleeps) == 3 and sleeps[2] == 7.0  # Retry-After honoured over the shorter backoff


async def test_connection_errors_alone_are_retried_then_reported(tmp_path):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    async def no_wait(_):
        return None

    client = httpx.AsyncClient(base_url="http://ingest", transport=httpx.MockTransport(refuse))
    partner = PartnerApi(client, PartnerCredentials("mixpanel", PARTNER_KEY, DATA_IMPORT_KEY), POLICY, no_wait)
    with pytest.raises(ApiError, match="ConnectError") as raised:
        await sync_cohort(partner, SnapshotStore(tmp_path), JOB, members("u1"))
    assert raised.value.status is None and raised.value.attempts == 3


async def test_pre_2010_drops_are_counted(services, tmp_path):
    from datetime import UTC, datetime

    old = datetime(2009, 1, 1, tzinfo=UTC)
    export = {Identifier.external_id("u1"): old, Identifier.device_id("d1"): None}
    report = await sync_cohort(api(services), SnapshotStore(tmp_path), JOB, export)
    assert (report.accepted, report.dropped_pre_2010) == (1, 1)


async def test_batches_go_in_parallel_up_to_the_concurrency(tmp_path):
    in_flight, peak = 0, 0

    async def slow_ingest(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(202, json={"message": "success", "accepted": 1})

    client = httpx.AsyncClient(base_url="http://ingest", transport=httpx.MockTransport(slow_ingest))
    partner = PartnerApi(client, PartnerCredentials("mixpanel", PARTNER_KEY, DATA_IMPORT_KEY), POLICY)
    job = CohortSync("mp_1", "c", KEY, concurrency=3, batch_limit=1)
    report = await sync_cohort(partner, SnapshotStore(tmp_path), job, members(*(f"u{i}" for i in range(8))))
    assert report.requests == 9 and peak == 3
