"""The producer API over HTTP on in-memory adapters: check order, status codes, messages,
and what is published."""

import pytest
from cohort_shared.schemas import CohortChangesAccepted, CohortChangesReceived, CohortNamed

from .conftest import PARTNER_KEY, make_harness

USERS = "/partners/mixpanel/cohorts/users"
COHORTS = "/partners/mixpanel/cohorts"


def changes_body(secret, **overrides):
    body = {"partner_api_key": PARTNER_KEY, "client_secret": secret, "cohort_id": "mp_12345",
            "cohort_changes": [{"user_ids": ["u1"], "device_ids": ["d9"],
                                "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]},
                               {"user_ids": ["u7"], "should_remove": True}]}
    body.update(overrides)
    return body


def naming_body(secret, **overrides):
    body = {"partner_api_key": PARTNER_KEY, "client_secret": secret, "cohort_id": "mp_12345",
            "name": "Churn risk", "created_at": "2026-01-21T19:20:30+05:00"}
    body.update(overrides)
    return body


async def test_spec_example_is_accepted_and_published_as_receipt_then_changes(harness, secret):
    response = await harness.client.post(USERS, json=changes_body(secret))
    assert response.status_code == 202
    assert response.json() == {"message": "success", "accepted": 4, "dropped": {"pre_2010": 0}}
    (meta_topic, receipt), (changes_topic, accepted) = harness.publisher.published
    assert (meta_topic, changes_topic) == ("unit.cohort.meta", "unit.cohort.changes")
    assert isinstance(receipt, CohortChangesReceived) and isinstance(accepted, CohortChangesAccepted)
    assert (receipt.workspace_id, receipt.partner, receipt.cohort_id, receipt.received) == ("acme", "mixpanel", "mp_12345", 4)
    assert receipt.request_id == accepted.request_id and len(accepted.request_id) == 32
    assert [c.kind for c in accepted.changes] == ["external_id", "device_id", "alias", "external_id"]


async def test_each_request_has_its_own_request_id(harness, secret):
    for _ in range(2):
        assert (await harness.client.post(USERS, json=changes_body(secret))).status_code == 202
    ids = {m.request_id for m in harness.publisher.on("unit.cohort.changes")}
    assert len(ids) == 2


async def test_dropped_changes_are_counted_and_a_fully_dropped_request_publishes_only_its_receipt(harness, secret):
    body = changes_body(secret, cohort_changes=[{"user_ids": ["a", "b"], "timestamp": "2009-06-01T00:00:00Z"}])
    response = await harness.client.post(USERS, json=body)
    assert response.json() == {"message": "success", "accepted": 0, "dropped": {"pre_2010": 2}}
    [(topic, receipt)] = harness.publisher.published
    assert topic == "unit.cohort.meta" and (receipt.received, receipt.dropped_pre_2010) == (2, 2)


async def test_naming_a_cohort(harness, secret):
    response = await harness.client.post(COHORTS, json=naming_body(secret))
    assert (response.status_code, response.json()) == (202, {"message": "success"})
    [(topic, named)] = harness.publisher.published
    assert topic == "unit.cohort.meta" and isinstance(named, CohortNamed) and named.name == "Churn risk"


@pytest.mark.parametrize("path", [USERS, COHORTS])
@pytest.mark.parametrize(("raw", "content_type"), [
    (b"{not json", "application/json"), (b"", "application/json"), (b"[1, 2]", "application/json"),
    (b'"text"', "application/json"), (b"\xff\xfe", "application/json"), (b"NaN", "application/json"),
    (b'{"a": 1}', "text/plain"), (b"a=1", "application/x-www-form-urlencoded"), (b'{"a": 1}', "multipart/form-data"),
])
async def test_unparseable_bodies_are_400_before_anything_else(harness, path, raw, content_type):
    response = await harness.client.post(path, content=raw, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["message"] in {"body must be valid JSON", "body must be a JSON object",
                                          "Content-Type must be application/json"}
    assert harness.publisher.published == []


async def test_json_without_content_type_and_vendor_json_types_are_read(harness, secret):
    import orjson

    raw = orjson.dumps(changes_body(secret))
    for headers in ({}, {"content-type": "application/vnd.api+json"}, {"content-type": "application/json; charset=utf-8"}):
        response = await harness.client.post(USERS, content=raw, headers=headers)
        assert response.status_code == 202, (headers, response.text)


@pytest.mark.parametrize("path", [USERS, COHORTS])
async def test_check_order_partner_key_then_client_secret_then_fields(harness, secret, path):
    bad_fields = {"cohort_id": 5, "name": "", "cohort_changes": "x"}
    cases = [
        ({"client_secret": secret, **bad_fields}, 401, "Invalid Partner API key"),
        ({"partner_api_key": "wrong", "client_secret": secret, **bad_fields}, 401, "Invalid Partner API key"),
        ({"partner_api_key": None, "client_secret": "nope", **bad_fields}, 401, "Invalid Partner API key"),
        ({"partner_api_key": PARTNER_KEY, **bad_fields}, 401, "Invalid client secret"),
        ({"partner_api_key": PARTNER_KEY, "client_secret": "dik_unknown", **bad_fields}, 401, "Invalid client secret"),
        ({"partner_api_key": PARTNER_KEY, "client_secret": ["x"], **bad_fields}, 401, "Invalid client secret"),
        ({"partner_api_key": PARTNER_KEY, "client_secret": "x" * 10_000, **bad_fields}, 401, "Invalid client secret"),
        ({"partner_api_key": PARTNER_KEY, "client_secret": secret, **bad_fields}, 400, "cohort_id must be a valid string"),
    ]
    for body, status, message in cases:
        response = await harness.client.post(path, json=body)
        assert (response.status_code, response.json()) == (status, {"message": message}), body
    assert harness.publisher.published == []


async def test_a_partner_key_is_valid_only_on_its_own_partners_path(harness, secret):
    body = changes_body(secret, partner_api_key="amp-partner-key")
    assert (await harness.client.post(USERS, json=body)).json() == {"message": "Invalid Partner API key"}
    assert (await harness.client.post("/partners/amplitude/cohorts/users", json=body)).status_code == 202
    unknown = await harness.client.post("/partners/heap/cohorts/users", json=changes_body(secret))
    assert (unknown.status_code, unknown.json()) == (401, {"message": "Invalid Partner API key"})


async def test_no_partner_keys_configured_refuses_every_partner():
    h, client = await make_harness(partner_api_keys=None)
    async with client:
        secret = await h.new_key()
        response = await client.post(USERS, json=changes_body(secret))
        assert (response.status_code, response.json()) == (401, {"message": "Invalid Partner API key"})


async def test_bogus_identifiers_are_accepted_for_identity_resolution_to_report(harness, secret):
    body = changes_body(secret, cohort_changes=[{"user_ids": ["null", "anonymous", ""], "device_ids": ["ü🙂"]}])
    assert (await harness.client.post(USERS, json=body)).json()["accepted"] == 4


async def test_1001_identifiers_are_refused_saying_why(harness, secret):
    body = changes_body(secret, cohort_changes=[{"user_ids": [f"u{i}" for i in range(1001)]}])
    response = await harness.client.post(USERS, json=body)
    assert response.status_code == 400 and "at most 1,000 identifiers" in response.json()["message"]
    body = changes_body(secret, cohort_changes=[{"user_ids": [f"u{i}" for i in range(1000)]}])
    assert (await harness.client.post(USERS, json=body)).json()["accepted"] == 1000


async def test_bodies_over_the_limit_are_413_whether_declared_or_streamed():
    h, client = await make_harness(max_body_bytes=4096)
    async with client:
        big = b'{"cohort_id": "' + b"x" * 5000 + b'"}'
        response = await client.post(USERS, content=big, headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (413, {"message": "body must be at most 4096 bytes"})

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000

        response = await client.post(USERS, content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413


async def test_kafka_unavailable_is_503_and_nothing_is_acknowledged(harness, secret):
    harness.publisher.failing = True
    for path, body in ((USERS, changes_body(secret)), (COHORTS, naming_body(secret))):
        response = await harness.client.post(path, json=body)
        assert response.status_code == 503
        assert "Kafka" in response.json()["message"]


async def test_rate_limit_per_data_import_key_is_429_with_retry_after():
    h, client = await make_harness(rate_limit=3)
    async with client:
        first, second = await h.new_key(), await h.new_key()
        statuses = [(await client.post(USERS, json=changes_body(first))).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]
        limited = await client.post(COHORTS, json=naming_body(first))
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 3600
        assert "Rate limit" in limited.json()["message"]
        assert (await client.post(USERS, json=changes_body(second))).status_code == 202  # per key


async def test_a_deleted_key_is_refused_on_the_next_request(harness, secret):
    from .conftest import ADMIN

    [listed] = (await harness.client.get("/workspaces/acme/data-import-keys", headers=ADMIN)).json()["keys"]
    assert (await harness.client.post(USERS, json=changes_body(secret))).status_code == 202
    assert (await harness.client.delete(f"/workspaces/acme/data-import-keys/{listed['key_id']}", headers=ADMIN)).status_code == 204
    response = await harness.client.post(USERS, json=changes_body(secret))
    assert (response.status_code, response.json()) == (401, {"message": "Invalid client secret"})


async def test_unknown_routes_and_methods_answer_json_messages(harness):
    missing = await harness.client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    wrong = await harness.client.get(USERS)
    assert (wrong.status_code, wrong.json()) == (405, {"message": "Method Not Allowed"})


async def test_redis_down_is_a_503_that_names_no_address():
    from redis.exceptions import ConnectionError as RedisConnectionError

    class DownKeyStore:
        async def owner_of(self, client_secret):
            raise RedisConnectionError("Error 111 connecting to redis://:hunter2@10.0.0.5:6379")

    h, client = await make_harness()
    async with client:
        secret = await h.new_key()
        client._transport.app.state.ingest.keys = DownKeyStore()
        response = await client.post(USERS, json=changes_body(secret))
        assert (response.status_code, response.json()) == (503, {"message": "the key store is unavailable right now; retry later"})
