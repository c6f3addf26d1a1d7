"""ingest on the real Kafka broker and Redis server: what a 202 acknowledged is on its topic
exactly once; a 503 when Kafka is unreachable; keys stop working at once and are never
stored in clear."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from cohort_shared import schemas
from cohort_shared.testing import eventually, read_topic
from ingest.app import create_app
from ingest.settings import IngestSettings

pytestmark = pytest.mark.integration

PARTNER_KEY = "it-mixpanel-key"
ADMIN = {"Authorization": "Bearer test-admin-token"}
USERS = "/partners/mixpanel/cohorts/users"


def ingest_settings(stack_env: dict[str, str], **overrides) -> IngestSettings:
    return IngestSettings(**stack_env, PARTNER_API_KEYS=f"mixpanel={PARTNER_KEY}", **overrides)


@asynccontextmanager
async def running(settings: IngestSettings):
    """The real app (KafkaPublisher, Redis adapters), lifespan included, with a client on it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest", timeout=30) as client:
            yield client


async def new_key(client: httpx.AsyncClient, workspace: str = "acme") -> dict:
    response = await client.post(f"/workspaces/{workspace}/data-import-keys", headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def changes(secret: str, cohort_id: str = "mp_12345", **extra) -> dict:
    return {"partner_api_key": PARTNER_KEY, "client_secret": secret, "cohort_id": cohort_id,
            "cohort_changes": [{"user_ids": ["u1"], "device_ids": ["d9"],
                                "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]},
                               {"user_ids": ["u7"], "should_remove": True},
                               {"user_ids": ["old"], "timestamp": "2009-01-01T00:00:00Z"}], **extra}


async def test_what_a_202_acknowledged_is_on_the_topics_exactly_once(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env)
    async with running(settings) as client:
        secret = (await new_key(client))["data_import_key"]
        named = await client.post("/partners/mixpanel/cohorts", json={
            "partner_api_key": PARTNER_KEY, "client_secret": secret, "cohort_id": "mp_12345",
            "name": "Churn risk", "created_at": "2026-01-21T19:20:30+05:00"})
        assert (named.status_code, named.json()) == (202, {"message": "success"})
        response = await client.post(USERS, json=changes(secret))
        assert response.json() == {"message": "success", "accepted": 4, "dropped": {"pre_2010": 1}}
        identity = await client.post("/workspaces/acme/users/track", headers=ADMIN,
                                     json={"attributes": [{"external_id": "u1"}, {"device_id": "d9"}]})
        assert identity.json() == {"message": "success", "accepted": 2, "request_id": identity.json()["request_id"]}

    bootstrap, topics = settings.kafka_bootstrap_servers, settings.topics
    [record] = await read_topic(bootstrap, topics.cohort_changes, expected=1, settle=1.0)
    accepted = schemas.decode("cohort.changes", record.value)
    assert record.key == b"acme\x1fmixpanel\x1fmp_12345" == accepted.kafka_key()
    assert [(c.kind, c.value, c.should_remove) for c in accepted.changes] == [
        ("external_id", "u1", False), ("device_id", "d9", False), ("alias", "a@x.com", False), ("external_id", "u7", True)]

    meta = await read_topic(bootstrap, topics.cohort_meta, expected=2, settle=1.0)
    named_message, receipt = (schemas.decode("cohort.meta", r.value) for r in meta)  # one key: one partition, in order
    assert isinstance(named_message, schemas.CohortNamed) and named_message.name == "Churn risk"
    assert isinstance(receipt, schemas.CohortChangesReceived)
    assert (receipt.received, receipt.dropped_pre_2010, receipt.request_id) == (5, 1, accepted.request_id)

    [event] = await read_topic(bootstrap, topics.identity_events, expected=1, settle=0.5)
    track = schemas.decode("identity.events", event.value)
    assert isinstance(track, schemas.TrackRequested) and event.key == b"acme" and len(track.attributes) == 2


async def test_a_retried_request_is_a_second_record_with_its_own_request_id(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env)
    async with running(settings) as client:
        secret = (await new_key(client))["data_import_key"]
        for _ in range(2):
            assert (await client.post(USERS, json=changes(secret))).status_code == 202
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.cohort_changes, expected=2, settle=1.0)
    assert len(records) == 2 and len({schemas.decode("cohort.changes", r.value).request_id for r in records}) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_503_when_kafka_is_unreachable_and_never_a_hang(stack_env, redis_client):
    dead = {**stack_env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}  # nothing listens there
    settings = ingest_settings(dead, publish_timeout_seconds=1.0)
    async with running(settings) as client:
        secret = (await new_key(client))["data_import_key"]  # keys live in Redis, which is up
        started = time.monotonic()
        response = await client.post(USERS, json=changes(secret))
        assert response.status_code == 503 and "Kafka" in response.json()["message"]
        identity = await client.post("/workspaces/acme/users/track", headers=ADMIN, json={"attributes": [{"device_id": "d"}]})
        assert identity.status_code == 503
        assert time.monotonic() - started < 5
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {"kafka": False, "redis": True}


async def test_a_broker_that_accepts_but_never_answers_still_gets_a_503_in_bounded_time(stack_env, redis_client):
    async def black_hole(reader, writer):
        await reader.read()  # hold the connection open, answer nothing

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = ingest_settings({**stack_env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"},
                                   publish_timeout_seconds=0.5)
        started = time.monotonic()
        async with running(settings) as client:
            secret = (await new_key(client))["data_import_key"]
            response = await client.post(USERS, json=changes(secret))
            assert response.status_code == 503
        assert time.monotonic() - started < 10
    finally:
        server.close()


async def test_an_invalidated_key_is_refused_on_the_next_request(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env)
    async with running(settings) as client:
        kept, revoked = await new_key(client), await new_key(client)
        assert (await client.post(USERS, json=changes(revoked["data_import_key"]))).status_code == 202
        deleted = await client.delete(f"/workspaces/acme/data-import-keys/{revoked['key_id']}", headers=ADMIN)
        assert deleted.status_code == 204
        refused = await client.post(USERS, json=changes(revoked["data_import_key"]))
        assert (refused.status_code, refused.json()) == (401, {"message": "Invalid client secret"})
        assert (await client.post(USERS, json=changes(kept["data_import_key"]))).status_code == 202  # rotation
        listed = (await client.get("/workspaces/acme/data-import-keys", headers=ADMIN)).json()["keys"]
        assert [k["key_id"] for k in listed] == [kept["key_id"]] and listed[0]["last_used_at"]
        missing = await client.delete(f"/workspaces/acme/data-import-keys/{revoked['key_id']}", headers=ADMIN)
        assert missing.status_code == 404


async def test_no_clear_key_is_stored_in_redis(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env)
    async with running(settings) as client:
        issued = [await new_key(client, ws) for ws in ("acme", "acme", "globex")]
        for key in issued:
            assert (await client.post(USERS, json=changes(key["data_import_key"]))).status_code == 202
        await client.delete(f"/workspaces/acme/data-import-keys/{issued[0]['key_id']}", headers=ADMIN)

    clear = [k["data_import_key"].encode() for k in issued]
    secret_parts = [k[4:] for k in clear]  # the random part, without the dik_ prefix
    stored = []
    async for name in redis_client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000):
        kind = (await redis_client.type(name)).decode()
        if kind == "hash":
            stored.extend(b"%s=%s" % pair for pair in (await redis_client.hgetall(name)).items())
        elif kind == "string":
            stored.append(await redis_client.get(name))
        else:
            raise AssertionError(f"unexpected Redis type {kind} at {name!r}")
        stored.append(name)
    assert len(stored) > 5
    assert not [blob for blob in stored for part in secret_parts if part in blob]


async def test_rate_limit_is_shared_through_redis(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env, rate_limit_per_hour=2)
    async with running(settings) as one, running(settings) as two:  # two instances, one budget
        secret = (await new_key(one))["data_import_key"]
        statuses = [(await client.post(USERS, json=changes(secret))).status_code for client in (one, two, one)]
        assert statuses == [202, 202, 429]
        limited = await two.post(USERS, json=changes(secret))
        assert limited.status_code == 429 and 0 < int(limited.headers["retry-after"]) <= 3600


async def test_readyz_once_connected(stack_env, kafka_topics, redis_client):
    async with running(ingest_settings(stack_env)) as client:
        ready = await eventually(lambda: client.get("/readyz"), until=lambda r: r.status_code == 200)
        assert ready.json()["checks"] == {"kafka": True, "redis": True}
