"""The operator API of delivery: the real app on an in-memory registry and delivery log."""

from __future__ import annotations

import httpx
import pytest
from delivery.adapters.destinations import check_destination
from delivery.adapters.queues import Counts, InMemoryDeliveryLog
from delivery.adapters.registry import InMemoryWebhookRegistry
from delivery.app import create_app
from delivery.settings import DeliverySettings
from redis.exceptions import ConnectionError as RedisConnectionError

ADMIN = {"Authorization": "Bearer unit-admin-token"}
KEY = "dGVzdC1vbmx5LWRlbGl2ZXJ5LXNlY3JldC1rZXktMzI="


class NoSender:
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def public(url: str, allow_private: bool) -> None:
    """Destinations as if every name resolved to a public address (no DNS in unit tests)."""


@pytest.fixture
async def harness():
    registry, log = InMemoryWebhookRegistry(), InMemoryDeliveryLog()
    app = create_app(DeliverySettings(admin_token="unit-admin-token", secret_key=KEY, topic_prefix="unit."),
                     registry=registry, queues=log, sender=NoSender(), check_destination=public, run_stream=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://delivery") as client:
        yield client, registry, log


async def create(client, **body) -> httpx.Response:
    return await client.post("/workspaces/acme/webhooks", json={"url": "https://hooks.example.com/in", **body},
                             headers=ADMIN)


async def test_the_secret_is_shown_once_and_stored_sealed(harness):
    client, registry, _ = harness
    answer = await create(client, description="CRM sync", filter={"cohort_ids": ["churn"], "changes": ["added"]})
    assert answer.status_code == 201
    created = answer.json()
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    assert created["filter"] == {"cohort_ids": ["churn"], "changes": ["added"]}
    stored = next(iter(registry.webhooks.values()))
    assert created["secret"] not in stored.model_dump_json() and created["secret"][6:] not in stored.model_dump_json()
    shown = (await client.get(f"/workspaces/acme/webhooks/{created['webhook_id']}", headers=ADMIN)).json()
    assert "secret" not in shown and shown["description"] == "CRM sync"
    assert (shown["delivered"], shown["pending"], shown["failed"], shown["last_error"]) == (0, 0, 0, None)


async def test_counts_come_from_the_delivery_log(harness):
    client, _, log = harness
    webhook_id = (await create(client)).json()["webhook_id"]
    log.counts_by_id[webhook_id] = Counts(7, 3, 2, "HTTP 500", 1.5)
    listed = (await client.get("/workspaces/acme/webhooks", headers=ADMIN)).json()
    assert [(w["delivered"], w["pending"], w["failed"], w["last_error"]) for w in listed["webhooks"]] == [
        (7, 3, 2, "HTTP 500")]
    assert listed["next_cursor"] is None


@pytest.mark.parametrize("body, message", [
    ({"url": "ftp://x.example.com"}, "url must use http or https"),
    ({"url": None}, "url must be an http or https URL of at most 2048 characters"),
    ({"url": "https://x.example.com", "filter": {"changes": ["moved"]}}, "filter.changes[0]: Input should be 'added' or 'removed'"),
    ({"url": "https://x.example.com", "filter": {"cohort": ["c"]}}, "filter.cohort is not a known field"),
    ({"url": "https://x.example.com", "filter": {"partners": ["Not A Partner"]}}, "filter.partners[0]: String should match pattern '^[a-z][a-z0-9_-]{0,31}$'"),
    ({"url": "https://x.example.com", "secret": "mine"}, "secret is not a known field"),
])
async def test_bad_webhooks_are_400_naming_the_field(harness, body, message):
    client, _, _ = harness
    answer = await client.post("/workspaces/acme/webhooks", json=body, headers=ADMIN)
    assert (answer.status_code, answer.json()["message"]) == (400, message)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://localhost/hook",
                                 "http://169.254.169.254/latest", "https://10.0.0.7/"])
async def test_private_destinations_are_refused_by_default_names_resolved(url):
    app = create_app(DeliverySettings(admin_token="unit-admin-token", secret_key=KEY),
                     registry=InMemoryWebhookRegistry(), queues=InMemoryDeliveryLog(), sender=NoSender(),
                     check_destination=check_destination, run_stream=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://delivery") as client:
        answer = await client.post("/workspaces/acme/webhooks", json={"url": url}, headers=ADMIN)
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("url must not point at a loopback, link-local or private address")


async def test_pause_resume_rotate_attempts_replay_and_delete(harness):
    client, _, log = harness
    created = (await create(client)).json()
    path = f"/workspaces/acme/webhooks/{created['webhook_id']}"
    assert (await client.patch(path, json={"status": "paused"}, headers=ADMIN)).json()["status"] == "paused"
    bad = await client.patch(path, json={"status": "stopped"}, headers=ADMIN)
    assert (bad.status_code, bad.json()["message"]) == (400, "status: Input should be 'active' or 'paused'")
    assert (await client.patch(path, json={"status": "active"}, headers=ADMIN)).json()["status"] == "active"
    assert log.due[created["webhook_id"]] == 0  # resuming sends the backlog now

    rotated = (await client.post(f"{path}/rotate-secret", headers=ADMIN)).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]

    log.attempts_by_id[created["webhook_id"]] = [{"event_id": f"e{i}", "attempt": 1, "at": 1.0, "status_code": 500,
                                                  "error": "HTTP 500", "duration_ms": 2.0, "result": "retrying"}
                                                 for i in range(5)]
    assert len((await client.get(f"{path}/attempts?limit=2", headers=ADMIN)).json()["attempts"]) == 2
    assert (await client.get(f"{path}/attempts?limit=0", headers=ADMIN)).status_code == 400

    future = await client.post(f"{path}/replay", json={"from": "2999-01-01T00:00:00Z"}, headers=ADMIN)
    assert (future.status_code, future.json()["message"]) == (400, "from must not be in the future")
    naive = await client.post(f"{path}/replay", json={"from": "2026-01-01T00:00:00"}, headers=ADMIN)
    assert (naive.status_code, naive.json()["message"]) == (400, "from must be an ISO-8601 time with a time zone")
    missing = await client.post(f"{path}/replay", json={}, headers=ADMIN)
    assert (missing.status_code, missing.json()["message"]) == (400, "from is required")
    started = await client.post(f"{path}/replay", json={"from": "2026-01-01T00:00:00Z"}, headers=ADMIN)
    assert started.status_code == 202 and started.json()["replay"]["status"] == "running"

    assert (await client.delete(path, headers=ADMIN)).status_code == 204
    assert log.purged == [created["webhook_id"]]
    gone = await client.get(path, headers=ADMIN)
    assert (gone.status_code, gone.json()["message"]) == (404, "webhook_id not found in this workspace")


async def test_another_workspace_sees_nothing_and_the_token_is_required(harness):
    client, _, _ = harness
    created = (await create(client)).json()
    assert (await client.get(f"/workspaces/other/webhooks/{created['webhook_id']}", headers=ADMIN)).status_code == 404
    assert (await client.get("/workspaces/other/webhooks", headers=ADMIN)).json()["webhooks"] == []
    assert (await client.get("/workspaces/acme/webhooks")).status_code == 401
    assert (await client.get("/workspaces/bad%20name/webhooks", headers=ADMIN)).status_code == 400


async def test_webhooks_are_listed_a_page_at_a_time(harness):
    client, _, _ = harness
    ids = [(await create(client)).json()["webhook_id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/workspaces/acme/webhooks", params=params, headers=ADMIN)).json()
        seen += [w["webhook_id"] for w in page["webhooks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    bad = await client.get("/workspaces/acme/webhooks", params={"cursor": "nonsense"}, headers=ADMIN)
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]


async def test_redis_unavailable_is_a_503_with_retry_after(harness):
    client, registry, _ = harness

    async def down(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    registry.all_in = down
    answer = await client.get("/workspaces/acme/webhooks", headers=ADMIN)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert "unavailable" in answer.json()["message"]


def test_settings_refuse_a_missing_or_malformed_secret_key_without_printing_it(monkeypatch):
    import pydantic

    monkeypatch.delenv("DELIVERY_SECRET_KEY", raising=False)
    with pytest.raises(pydantic.ValidationError) as missing:
        DeliverySettings()
    assert "secret_key" in str(missing.value)
    with pytest.raises(pydantic.ValidationError) as short:
        DeliverySettings(secret_key="c2hvcnQ=")
    assert "32 bytes" in str(short.value) and "c2hvcnQ=" not in str(short.value)
    assert "dGVzdC1v" not in str(DeliverySettings(secret_key=KEY).masked())


async def test_openapi_documents_the_bodies_it_reads(harness):
    client, _, _ = harness
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/workspaces/{ws}/webhooks"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateWebhookBody"}
    assert "WebhookFilter" in document["components"]["schemas"]
    assert "422" not in create["responses"]
