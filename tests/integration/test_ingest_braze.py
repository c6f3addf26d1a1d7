"""The Braze REST API of ingest on the real Kafka broker and Redis server: REST API keys kept
as hashes and refused at once when revoked, one rate limit shared by every instance, the
export view built by its stream processor from identity.profiles, and Redis or segment-store
failing → 503."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from cohort_shared import schemas as s
from cohort_shared.testing import PrivateRedis, eventually, read_topic

from .test_ingest_kafka import ADMIN, ingest_settings, running

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 21, 10, 0, tzinfo=UTC)


async def rest_key(client: httpx.AsyncClient, workspace: str = "acme") -> dict:
    answer = await client.post(f"/workspaces/{workspace}/rest-api-keys", headers=ADMIN, json={
        "name": "backend", "permissions": ["users.track", "users.export.ids"]})
    assert answer.status_code == 201, answer.text
    return answer.json()


def bearer(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['rest_api_key']}"}


async def test_a_rest_key_publishes_to_identity_events_is_kept_hashed_and_refused_once_revoked(
        stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env)
    async with running(settings) as client:
        key = await rest_key(client)
        answer = await client.post("/users/track", headers=bearer(key), json={
            "attributes": [{"external_id": "u1", "email": "u1@example.com"}]})
        assert answer.status_code == 201, answer.text
        [record] = await read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], settings.topics.identity_events, expected=1)
        event = s.decode("identity.events", record.value)
        assert isinstance(event, s.TrackRequested) and event.workspace_id == "acme" and record.key == b"acme"
        assert event.attributes[0].custom_attributes == {"email": "u1@example.com"}
        assert (await client.delete(f"/workspaces/acme/rest-api-keys/{key['key_id']}", headers=ADMIN)).status_code == 204
        refused = await client.post("/users/track", headers=bearer(key), json={"attributes": [{"external_id": "u1"}]})
        assert refused.status_code == 401
    secret = key["rest_api_key"][4:].encode()
    async for name in redis_client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000):
        if (await redis_client.type(name)) == b"hash":
            assert not any(secret in field + value for field, value in (await redis_client.hgetall(name)).items())


async def test_the_rest_rate_limit_is_one_budget_for_every_instance(stack_env, kafka_topics, redis_client):
    settings = ingest_settings(stack_env, rest_rate_limits="users.export.ids=2/60")
    async with running(settings) as one, running(settings) as two:
        key = await rest_key(one)
        answers = [await c.post("/users/export/ids", headers=bearer(key), json={"external_ids": ["x"]})
                   for c in (one, two, one)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].headers["x-ratelimit-limit"] == "2" and answers[2].headers["x-ratelimit-remaining"] == "0"


async def test_the_export_view_follows_profiles_and_asks_segment_store_for_cohorts(stack_env, kafka_topics, redis_client,
                                                                                  unused_tcp_port):
    # No segment-store answers here (the end-to-end tests run one): an export that shows cohorts
    # is a 503, one that does not ask for them never calls it.
    settings = ingest_settings(stack_env, segment_store_url=f"http://127.0.0.1:{unused_tcp_port}")
    topics = settings.topics
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()

    async def send(topic: str, message: s.Message | None, key: str) -> None:
        await producer.send_and_wait(topic, None if message is None else message.to_bytes(), key=key.encode())

    ada, bob = "u" + "a" * 23, "u" + "b" * 23
    try:
        async with running(settings) as client:
            key = await rest_key(client)
            for user_id, external_id in ((ada, "ada"), (bob, "bob")):
                await send(topics.identity_profiles, s.ProfileUpdated(
                    workspace_id="acme", user_id=user_id, external_id=external_id, identified=True,
                    aliases=[s.Alias(alias_name=f"{external_id}@x.com", alias_label="email")],
                    custom_attributes={"email": f"{external_id.upper()}@x.com", "plan": "pro"}, updated_at=NOW), user_id)

            async def export(body: dict) -> dict:
                answer = await client.post("/users/export/ids", headers=bearer(key),
                                           json={**body, "fields_to_export": ["email", "custom_attributes"]})
                assert answer.status_code == 201, answer.text
                return answer.json()

            both = await eventually(lambda: export({"external_ids": ["ada", "bob"]}),
                                    until=lambda a: len(a["users"]) == 2, timeout=30)
            assert both["users"][0] == {
                "external_id": "ada", "braze_id": ada, "user_aliases": [{"alias_name": "ada@x.com", "alias_label": "email"}],
                "email": "ADA@x.com", "custom_attributes": {"plan": "pro"}}
            with_cohorts = await client.post("/users/export/ids", headers=bearer(key), json={"external_ids": ["ada"]})
            assert with_cohorts.status_code == 503 and with_cohorts.headers["retry-after"] == "1"
            assert "segment-store" in with_cohorts.json()["message"]
            await send(topics.identity_profiles, None, bob)  # bob deleted
            found = await eventually(lambda: export({"external_ids": ["ada", "bob"]}),
                                     until=lambda a: a["invalid_user_ids"] == ["bob"], timeout=30)
            assert [u["braze_id"] for u in found["users"]] == [ada]
            assert [u["braze_id"] for u in (await export({"email_address": "ada@X.com"}))["users"]] == [ada]
            assert (await export({"user_aliases": [{"alias_name": "bob@x.com", "alias_label": "email"}]}))["users"] == []
            ready = (await client.get("/readyz")).json()
            assert ready["export_view"]["state"] == "running" and ready["export_view"]["assigned"] == 3
    finally:
        await producer.stop()


async def test_redis_unable_to_serve_is_a_503_with_retry_after(stack_env, kafka_topics, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        # On a cluster (REDIS_MODE=cluster) the private server is a one-node cluster.
        settings = ingest_settings({**stack_env, "REDIS_URL": redis.url})
        async with running(settings) as client:
            key = await rest_key(client)
            redis.read_only()
            answer = await client.post("/users/track", headers=bearer(key), json={"attributes": [{"external_id": "u"}]})
            assert answer.status_code == 503 and answer.headers["retry-after"] and answer.json()["message"]
            redis.writable()
            redis.stop()
            down = await client.post("/users/export/ids", headers=bearer(key), json={"external_ids": ["u"]})
            assert down.status_code == 503 and down.headers["retry-after"] and down.json()["message"]
            created = await client.post("/workspaces/acme/rest-api-keys", headers=ADMIN,
                                        json={"name": "x", "permissions": ["users.track"]})
            assert created.status_code == 503
    finally:
        redis.stop()
