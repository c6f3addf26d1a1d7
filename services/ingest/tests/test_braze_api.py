"""The Braze REST API on the real ingest app, with in-memory adapters: keys, permissions,
rate limits, Braze's answers, and the same identity.events as the operator API."""

import pytest
from cohort_shared.schemas import Alias, DeleteRequested, IdentifyRequested, MergeRequested, TrackRequested
from ingest.domain.braze_export import ExportedProfile

from .conftest import ADMIN, make_harness

TOPIC = "unit.identity.events"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_rest_key_is_shown_once_listed_masked_with_its_last_use_and_refused_once_deleted(harness):
    created = (await harness.client.post("/workspaces/acme/rest-api-keys", headers=ADMIN,
                                         json={"name": "backend", "permissions": ["users.track", "users.delete"]})).json()
    assert set(created) == {"key_id", "rest_api_key", "name", "permissions", "rest_endpoint"}
    assert created["permissions"] == ["users.track", "users.delete"] and created["rest_api_key"].startswith("rak_")
    assert created["rest_endpoint"] == "http://127.0.0.1:8080"
    listed = (await harness.client.get("/workspaces/acme/rest-api-keys", headers=ADMIN)).json()
    [key] = listed["keys"]
    assert key["last_used_at"] is None and created["rest_api_key"] not in str(listed)
    assert key["masked"].startswith("rak_") and "…" in key["masked"] and listed["next_cursor"] is None
    answer = await harness.client.post("/users/track", headers=bearer(created["rest_api_key"]),
                                       json={"attributes": [{"external_id": "u1"}]})
    assert answer.status_code == 201, answer.text
    listed = (await harness.client.get("/workspaces/acme/rest-api-keys", headers=ADMIN)).json()
    assert listed["keys"][0]["last_used_at"] is not None
    assert (await harness.client.delete(f"/workspaces/acme/rest-api-keys/{created['key_id']}", headers=ADMIN)).status_code == 204
    refused = await harness.client.post("/users/track", headers=bearer(created["rest_api_key"]),
                                        json={"attributes": [{"external_id": "u1"}]})
    assert refused.status_code == 401 and "message" in refused.json()


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "permissions": ["users.fly"]}, "permissions[0] must be 'users.track', "),
    ({"name": "", "permissions": ["users.track"]}, "name must be a non-empty string"),
    ({"name": "x", "permissions": []}, "permissions must hold at least 1 entry"),
    ({"permissions": ["users.track"]}, "name is required"),
])
async def test_a_rest_key_needs_a_name_and_known_permissions(harness, body, message):
    answer = await harness.client.post("/workspaces/acme/rest-api-keys", headers=ADMIN, json=body)
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text


async def test_a_data_import_key_is_not_a_rest_key_nor_the_reverse(harness, secret):
    rest_key = await harness.new_rest_key()
    assert (await harness.client.post("/users/track", headers=bearer(secret),
                                      json={"attributes": [{"external_id": "u1"}]})).status_code == 401
    partner = await harness.client.post("/partners/mixpanel/cohorts", json={
        "partner_api_key": "mp-partner-key", "client_secret": rest_key, "cohort_id": "c", "name": "n",
        "created_at": "2026-01-01T00:00:00Z"})
    assert partner.status_code == 401


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
async def test_a_missing_or_unknown_key_is_401_before_the_body_is_read(harness, headers):
    answer = await harness.client.post("/users/track", headers=headers, content=b"not json")
    assert answer.status_code == 401 and answer.json()["message"].startswith("Invalid API key")


async def test_a_key_without_the_permission_is_403(harness):
    key = await harness.new_rest_key(permissions=("users.track",))
    answer = await harness.client.post("/users/delete", headers=bearer(key), json={"external_ids": ["u1"]})
    assert (answer.status_code, answer.json()) == (403, {"message": "This API key does not have the users.delete permission"})
    assert harness.publisher.published == []


async def test_the_rate_limit_is_per_workspace_and_endpoint_group_with_braze_headers():
    harness, client = await make_harness(rest_rate_limits="users.track=2/60")
    async with client:
        first, second = await harness.new_rest_key(), await harness.new_rest_key()
        answers = [await client.post("/users/track", headers=bearer(k), json={"attributes": [{"external_id": "u"}]})
                   for k in (first, second, first)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
        assert answers[2].headers["X-RateLimit-Limit"] == "2" and int(answers[2].headers["Retry-After"]) >= 1
        assert int(answers[2].headers["X-RateLimit-Reset"]) % 60 == 0 and "message" in answers[2].json()
        other = await client.post("/users/delete", headers=bearer(first), json={"external_ids": ["u"]})
        assert other.status_code == 201  # another group's budget


async def test_alias_identify_merge_and_delete_draw_on_one_budget_as_at_braze():
    harness, client = await make_harness(rest_rate_limits="users.profiles=4/60")
    async with client:
        key = await harness.new_rest_key()
        alias = {"alias_name": "a@x.com", "alias_label": "email"}
        bodies = [("/users/alias/new", {"user_aliases": [alias]}),
                  ("/users/identify", {"aliases_to_identify": [{"external_id": "u1", "user_alias": alias}]}),
                  ("/users/merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "u2"},
                                                       "identifier_to_keep": {"external_id": "u1"}}]}),
                  ("/users/delete", {"external_ids": ["u1"]}),
                  ("/users/merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "u3"},
                                                       "identifier_to_keep": {"external_id": "u1"}}]})]
        answers = [await client.post(path, headers=bearer(key), json=body) for path, body in bodies]
        assert [a.status_code for a in answers] == [201, 201, 201, 201, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["3", "2", "1", "0", "0"]
        assert len(harness.publisher.published) == 4


async def test_track_answers_braze_counts_and_publishes_what_the_operator_route_publishes(harness):
    key = await harness.new_rest_key()
    body = {"attributes": [{"external_id": "u1", "first_name": "Ada", "plan": {"tier": "pro"}},
                           {"user_alias": {"alias_name": "a@x.com", "alias_label": "email"}, "_update_existing_only": False}],
            "events": [{"external_id": "u2", "name": "opened", "time": "2026-01-01T00:00:00Z", "properties": {"n": 1}}],
            "purchases": [{"braze_id": "u" + "0" * 23, "product_id": "p", "currency": "EUR", "price": 9.5,
                           "time": "2026-01-01T00:00:00Z"}]}
    answer = await harness.client.post("/users/track", headers={**bearer(key), "X-Braze-Bulk": "true"}, json=body)
    assert (answer.status_code, answer.json()) == (201, {"message": "success", "attributes_processed": 2,
                                                         "events_processed": 1, "purchases_processed": 1})
    [braze] = harness.publisher.on(TOPIC)
    assert isinstance(braze, TrackRequested) and braze.workspace_id == "acme"
    operator_body = {"attributes": [u.model_dump(exclude_defaults=True) for u in braze.attributes]}
    assert (await harness.client.post("/workspaces/acme/users/track", headers=ADMIN, json=operator_body)).status_code == 202
    operator = harness.publisher.on(TOPIC)[1]
    assert operator.attributes == braze.attributes
    assert braze.attributes[0].custom_attributes == {"first_name": "Ada", "plan": {"tier": "pro"}}
    assert [u.custom_attributes for u in braze.attributes[2:]] == [{}, {}]  # events and purchases: not stored


async def test_an_alias_object_only_updates_unless_it_says_otherwise_as_at_braze(harness):
    key = await harness.new_rest_key()
    alias = {"alias_name": "a@x.com", "alias_label": "email"}
    body = {"attributes": [{"user_alias": alias, "plan": "pro"}, {"user_alias": alias, "_update_existing_only": False},
                           {"external_id": "u1"}, {"external_id": "u2", "_update_existing_only": True}],
            "events": [{"user_alias": alias, "name": "opened", "time": "2026-01-01T00:00:00Z"}]}
    assert (await harness.client.post("/users/track", headers=bearer(key), json=body)).status_code == 201
    [published] = harness.publisher.on(TOPIC)
    assert [u.update_existing_only for u in published.attributes] == [True, False, False, True, True]


async def test_invalid_objects_are_reported_while_the_valid_ones_are_applied(harness):
    key = await harness.new_rest_key()
    body = {"attributes": [{"external_id": "u1"}, {"first_name": "nobody"}, "text",
                           {"external_id": "u2", "braze_id": "u" + "0" * 23}],
            "events": [{"external_id": "u1", "name": "e"}],
            "purchases": [{"external_id": "u1", "product_id": "p", "currency": "EURO", "price": 1,
                           "time": "2026-01-01T00:00:00Z"}]}
    answer = (await harness.client.post("/users/track", headers=bearer(key), json=body)).json()
    assert answer["message"] == "success" and answer["attributes_processed"] == 1
    assert [(e["input_array"], e["index"]) for e in answer["errors"]] == [
        ("attributes", 1), ("attributes", 2), ("attributes", 3), ("events", 0), ("purchases", 0)]
    assert "external_id" in answer["errors"][0]["type"] and "'time'" in answer["errors"][3]["type"]
    assert "'currency'" in answer["errors"][4]["type"]
    [published] = harness.publisher.on(TOPIC)
    assert [u.external_id for u in published.attributes] == ["u1"]


async def test_a_request_with_nothing_valid_is_400_with_its_errors(harness):
    key = await harness.new_rest_key()
    answer = await harness.client.post("/users/track", headers=bearer(key), json={"attributes": [{}], "events": []})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Valid data must be provided")
    assert answer.json()["errors"][0]["input_array"] == "attributes"
    assert harness.publisher.published == []


@pytest.mark.parametrize("path, body, message", [
    ("/users/track", {"attributes": [{"external_id": str(i)} for i in range(76)]}, "attributes must hold at most 75 objects"),
    ("/users/track", {"events": "x"}, "events must be an array of objects"),
    ("/users/alias/new", {"user_aliases": [{"alias_name": "a", "alias_label": "b"}] * 51}, "user_aliases must hold at most 50"),
    ("/users/delete", {}, "at least one valid identifier is required"),
    ("/users/merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "a"},
                                         "identifier_to_keep": {"external_id": "a"}}]}, "merge_updates must hold"),
    ("/users/export/ids", {}, "body must hold at least one of external_ids"),
    ("/users/export/ids", {"external_ids": "u1"}, "external_ids must be a list"),
])
async def test_malformed_requests_are_400_naming_the_field(harness, path, body, message):
    key = await harness.new_rest_key()
    answer = await harness.client.post(path, headers=bearer(key), json=body)
    assert answer.status_code == 400 and answer.json()["message"].startswith(message), answer.text


async def test_bad_json_after_a_good_key_is_400_with_the_rate_limit_headers(harness):
    key = await harness.new_rest_key()
    answer = await harness.client.post("/users/track", headers=bearer(key), content=b"{")
    assert (answer.status_code, answer.json()) == (400, {"message": "body must be valid JSON"})
    assert answer.headers["X-RateLimit-Limit"] == "3000" and answer.headers["X-RateLimit-Remaining"] == "2999"
    exported = await harness.client.post("/users/export/ids", headers=bearer(key), json={})
    assert exported.status_code == 400 and exported.headers["X-RateLimit-Limit"] == "2500"


async def test_alias_identify_merge_and_delete_publish_the_profile_identity_messages(harness):
    key = await harness.new_rest_key()
    email = {"alias_name": "a@x.com", "alias_label": "email"}
    calls = [
        ("/users/alias/new", {"user_aliases": [{**email, "external_id": "u1"}, {"alias_name": 5}]},
         {"aliases_processed": 1}),
        ("/users/identify", {"aliases_to_identify": [{"external_id": "u9", "user_alias": email}]}, {"aliases_processed": 1}),
        ("/users/merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "u9"},
                                             "identifier_to_keep": {"user_alias": email}}]}, {}),
        ("/users/delete", {"external_ids": ["u1"], "user_aliases": [email], "braze_ids": ["u" + "1" * 23]},
         {"deleted": 3}),
    ]
    for path, body, counts in calls:
        answer = (await harness.client.post(path, headers=bearer(key), json=body)).json()
        assert {k: v for k, v in answer.items() if k != "errors"} == {"message": "success", **counts}, path
    assert (await harness.client.post("/users/alias/new", headers=bearer(key), json=calls[0][1])).json()["errors"] == [
        {"type": "alias_name must be a string", "input_array": "user_aliases", "index": 1}]
    types = [type(m) for m in harness.publisher.on(TOPIC)]
    assert types[1:4] == [IdentifyRequested, MergeRequested, DeleteRequested]
    deleted = harness.publisher.on(TOPIC)[3]
    assert deleted.braze_ids == ["u" + "1" * 23] and deleted.user_aliases == [Alias(**email)]


async def test_kafka_unavailable_is_503_with_nothing_acknowledged(harness):
    key = await harness.new_rest_key()
    harness.publisher.failing = True
    answer = await harness.client.post("/users/track", headers=bearer(key), json={"attributes": [{"external_id": "u"}]})
    assert answer.status_code == 503 and "message" in answer.json() and answer.headers["Retry-After"] == "1"


async def test_export_selects_by_every_identifier_and_reports_unknown_ones(harness):
    key = await harness.new_rest_key()
    ada = ExportedProfile("u" + "a" * 23, "ada", [Alias(alias_name="ada@x.com", alias_label="email")], ["d1"],
                          {"email": "Ada@X.com", "plan": "pro", "phone": "+4712345678"},
                          [{"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk"}])
    anon = ExportedProfile("u" + "b" * 23, None, [Alias(alias_name="anon", alias_label="session")], [], {})
    harness.export_view.add("acme", ada)
    harness.export_view.add("acme", anon)
    harness.export_view.add("other", ExportedProfile("u" + "c" * 23, "ghost", [], [], {}))

    async def export(body):
        answer = await harness.client.post("/users/export/ids", headers=bearer(key), json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    everything = await export({"external_ids": ["ada", "ghost"], "user_aliases": [{"alias_name": "anon", "alias_label": "session"}]})
    assert everything["invalid_user_ids"] == ["ghost"] and everything["message"] == "success"
    assert everything["users"] == [
        {"external_id": "ada", "braze_id": ada.user_id, "user_aliases": [{"alias_name": "ada@x.com", "alias_label": "email"}],
         "email": "Ada@X.com", "phone": "+4712345678", "custom_attributes": {"plan": "pro"},
         "cohorts": [{"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk"}]},
        {"external_id": None, "braze_id": anon.user_id, "user_aliases": [{"alias_name": "anon", "alias_label": "session"}],
         "custom_attributes": {}, "cohorts": []},
    ]
    for selector in ({"device_id": "d1"}, {"braze_id": ada.user_id}, {"email_address": "ada@x.com"},
                     {"phone": "+4712345678"}):
        assert [u["braze_id"] for u in (await export(selector))["users"]] == [ada.user_id], selector
    assert (await export({"braze_id": "u" + "9" * 23}))["invalid_user_ids"] == ["u" + "9" * 23]
    chosen = await export({"external_ids": ["ada"], "fields_to_export": ["cohorts"]})
    assert set(chosen["users"][0]) == {"external_id", "braze_id", "user_aliases", "cohorts"}
