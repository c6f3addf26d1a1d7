"""The operator API over HTTP: the admin token, data import keys, the profile identity API."""

import pytest
from cohort_shared import schemas as s

from .conftest import ADMIN, make_harness

KEYS = "/workspaces/acme/data-import-keys"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", KEYS), ("GET", KEYS), ("DELETE", f"{KEYS}/abc"), ("POST", "/workspaces/acme/users/track"),
    ("POST", "/workspaces/acme/users/merge"),
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "unit-admin-token"}])
async def test_operator_api_needs_the_admin_token(harness, method, path, headers):
    response = await harness.client.request(method, path, headers=headers, json={"attributes": [{"external_id": "u"}]})
    assert response.status_code == 401 and "message" in response.json()


async def test_no_admin_token_configured_refuses_everyone():
    h, client = await make_harness(admin_token=None)
    async with client:
        for headers in ({}, {"Authorization": "Bearer "}, ADMIN):
            assert (await client.get(KEYS, headers=headers)).status_code == 401


async def test_key_lifecycle_create_list_delete(harness):
    created = await harness.client.post(KEYS, headers=ADMIN)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"key_id", "data_import_key", "rest_endpoint"}
    assert body["rest_endpoint"] == "http://127.0.0.1:8080"
    assert body["data_import_key"].startswith("dik_") and len(body["data_import_key"]) >= 40
    second = (await harness.client.post(KEYS, headers=ADMIN)).json()

    listed = (await harness.client.get(KEYS, headers=ADMIN)).json()["keys"]
    assert [k["key_id"] for k in listed] == [body["key_id"], second["key_id"]]
    assert set(listed[0]) == {"key_id", "masked", "created_at", "last_used_at"}
    assert listed[0]["last_used_at"] is None
    assert body["data_import_key"] not in str(listed)
    key = body["data_import_key"]
    assert listed[0]["masked"] == f"dik_{key[4:8]}…{key[-4:]}"

    assert (await harness.client.delete(f"{KEYS}/{body['key_id']}", headers=ADMIN)).status_code == 204
    assert [k["key_id"] for k in (await harness.client.get(KEYS, headers=ADMIN)).json()["keys"]] == [second["key_id"]]
    again = await harness.client.delete(f"{KEYS}/{body['key_id']}", headers=ADMIN)
    assert (again.status_code, again.json()) == (404, {"message": "key_id not found in this workspace"})


async def test_a_key_is_invisible_and_undeletable_from_another_workspace(harness):
    key_id = (await harness.client.post(KEYS, headers=ADMIN)).json()["key_id"]
    assert (await harness.client.get("/workspaces/other/data-import-keys", headers=ADMIN)).json() == {"keys": [], "next_cursor": None}
    assert (await harness.client.delete(f"/workspaces/other/data-import-keys/{key_id}", headers=ADMIN)).status_code == 404


async def test_last_used_at_is_recorded_by_a_producer_request(harness, secret):
    body = {"partner_api_key": "mp-partner-key", "client_secret": secret, "cohort_id": "c",
            "cohort_changes": [{"user_ids": ["u"]}]}
    assert (await harness.client.post("/partners/mixpanel/cohorts/users", json=body)).status_code == 202
    [listed] = (await harness.client.get(KEYS, headers=ADMIN)).json()["keys"]
    assert listed["last_used_at"] is not None


async def test_rest_endpoint_comes_from_public_url():
    h, client = await make_harness(public_url="https://ingest.example.com/")
    async with client:
        assert (await client.post(KEYS, headers=ADMIN)).json()["rest_endpoint"] == "https://ingest.example.com"


@pytest.mark.parametrize("ws", ["a" * 65, "bad.name", "sp ace", "ü"])
async def test_workspace_names_are_checked(harness, ws):
    for method, path in (("POST", f"/workspaces/{ws}/data-import-keys"), ("GET", f"/workspaces/{ws}/data-import-keys"),
                         ("POST", f"/workspaces/{ws}/users/track")):
        response = await harness.client.request(method, path, headers=ADMIN, json={"attributes": [{"external_id": "u"}]})
        assert response.status_code == 400 and response.json()["message"].startswith("workspace must be"), path


IDENTITY_CASES = [
    ("track", {"attributes": [{"external_id": "u1"}, {"device_id": "d1"}]}, s.TrackRequested, 2),
    ("alias/new", {"user_aliases": [{"external_id": "u1", "alias_name": "a@x.com", "alias_label": "email"},
                                    {"alias_name": "b@x.com", "alias_label": "email"}]}, s.AliasRequested, 2),
    ("identify", {"aliases_to_identify": [{"external_id": "u9", "user_alias": {"alias_name": "n", "alias_label": "l"}}],
                  "devices_to_identify": [{"external_id": "u9", "device_id": "d5"}]}, s.IdentifyRequested, 2),
    ("merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "a"}, "identifier_to_keep": {"external_id": "b"}},
                                 {"identifier_to_merge": {"user_alias": {"alias_name": "n", "alias_label": "l"}},
                                  "identifier_to_keep": {"device_id": "d"}}]}, s.MergeRequested, 2),
    ("delete", {"external_ids": ["u1"], "user_aliases": [{"alias_name": "n", "alias_label": "l"}], "device_ids": ["d1", "d2"]},
     s.DeleteRequested, 4),
]


@pytest.mark.parametrize(("path", "body", "event", "count"), IDENTITY_CASES)
async def test_identity_requests_are_published_keyed_by_workspace(harness, path, body, event, count):
    response = await harness.client.post(f"/workspaces/acme/users/{path}", headers=ADMIN, json=body)
    [(topic, message)] = harness.publisher.published
    assert (response.status_code, response.json()) == (
        202, {"message": "success", "accepted": count, "request_id": message.request_id})
    assert topic == "unit.identity.events" and isinstance(message, event)
    assert message.workspace_id == "acme" and message.kafka_key() == b"acme"
    assert s.decode("identity.events", message.to_bytes()) == message


@pytest.mark.parametrize(("path", "body", "message"), [
    ("track", {}, "body must hold at least one entry in attributes"),
    ("track", {"attributes": []}, "body must hold at least one entry in attributes"),
    ("track", {"attributes": [{}]}, "attributes[0] exactly one of external_id, device_id, user_alias, braze_id is required"),
    ("track", {"attributes": [{"external_id": "u", "device_id": "d"}]},
     "attributes[0] exactly one of external_id, device_id, user_alias, braze_id is required"),
    ("track", {"attributes": [{"external_id": 5}]}, "attributes[0].external_id must be a string"),
    ("track", {"attributes": [{"external_id": "x" * 513}]}, "attributes[0].external_id must be at most 512 characters"),
    ("track", {"attributes": [{"external_id": "u", "first_name": "A"}]}, "attributes[0].first_name is not an allowed field"),
    ("track", {"attributes": "u1"}, "attributes must be a list"),
    ("track", {"attributes": [{"external_id": "u"}] * 1001}, "attributes must hold at most 1000 entries"),
    ("track", {"events": []}, "events is not an allowed field"),
    ("alias/new", {"user_aliases": [{"alias_name": "a"}]}, "user_aliases[0].alias_label is required"),
    ("identify", {"aliases_to_identify": [{"user_alias": {"alias_name": "n", "alias_label": "l"}}]},
     "aliases_to_identify[0].external_id is required"),
    ("identify", {"devices_to_identify": [{"external_id": "u"}]}, "devices_to_identify[0].device_id is required"),
    ("merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "a"}}]},
     "merge_updates[0].identifier_to_keep is required"),
    ("merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "a", "device_id": "d"},
                                  "identifier_to_keep": {"external_id": "b"}}]},
     "merge_updates[0].identifier_to_merge exactly one of external_id, user_alias, device_id is required"),
    ("merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "a"}, "identifier_to_keep": {"external_id": "a"}}]},
     "merge_updates[0] must name two different profiles"),
    ("delete", {"external_ids": [None]}, "external_ids[0] must be a string"),
    ("delete", {"user_aliases": [{"alias_name": "n", "alias_label": None}]}, "user_aliases[0].alias_label must be a string"),
    ("delete", {}, "body must hold at least one entry in external_ids, user_aliases, device_ids, braze_ids"),
])
async def test_malformed_identity_entries_are_400_naming_the_field(harness, path, body, message):
    response = await harness.client.post(f"/workspaces/acme/users/{path}", headers=ADMIN, json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})
    assert harness.publisher.published == []


async def test_identity_api_reads_bodies_like_the_producer_api(harness):
    response = await harness.client.post("/workspaces/acme/users/track", headers={**ADMIN, "content-type": "text/plain"},
                                         content=b"{}")
    assert (response.status_code, response.json()) == (400, {"message": "Content-Type must be application/json"})
    harness.publisher.failing = True
    response = await harness.client.post("/workspaces/acme/users/track", headers=ADMIN,
                                         json={"attributes": [{"external_id": "u"}]})
    assert response.status_code == 503


async def test_openapi_documents_every_route_and_body(harness):
    document = (await harness.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths) >= {"/partners/{partner}/cohorts", "/partners/{partner}/cohorts/users",
                          "/workspaces/{ws}/data-import-keys", "/workspaces/{ws}/data-import-keys/{key_id}",
                          "/workspaces/{ws}/users/track", "/workspaces/{ws}/users/alias/new",
                          "/workspaces/{ws}/users/identify", "/workspaces/{ws}/users/merge", "/workspaces/{ws}/users/delete"}
    users = paths["/partners/{partner}/cohorts/users"]["post"]
    assert users["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CohortChangesBody"}
    assert {"202", "400", "401", "413", "429", "503"} <= set(users["responses"]) and "422" not in users["responses"]
    schemas = document["components"]["schemas"]
    assert {"CohortChangesBody", "CohortChangeEntry", "AliasEntry", "TrackBody", "MergeUpdate"} <= set(schemas)
    assert schemas["CohortChangesBody"]["properties"]["cohort_changes"]["items"] == {"$ref": "#/components/schemas/CohortChangeEntry"}


async def test_ops_routes(harness):
    assert (await harness.client.get("/healthz")).status_code == 200
    ready = await harness.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"kafka": True, "redis": True}
    harness.publisher.failing = True
    assert (await harness.client.get("/readyz")).status_code == 503
    assert "ingest_requests_total" in (await harness.client.get("/metrics")).text


async def test_keys_are_listed_a_page_at_a_time(harness):
    created = [(await harness.client.post(KEYS, headers=ADMIN)).json()["key_id"] for _ in range(5)]
    listed, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await harness.client.get(KEYS, headers=ADMIN, params=params)).json()
        assert len(page["keys"]) <= 2
        listed += [k["key_id"] for k in page["keys"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(created) and len(listed) == 5


async def test_a_bad_limit_or_cursor_is_a_400_naming_it(harness):
    answer = await harness.client.get(KEYS, headers=ADMIN, params={"limit": 0})
    assert answer.status_code == 400 and "limit" in answer.json()["message"]
    answer = await harness.client.get(KEYS, headers=ADMIN, params={"cursor": "garbage"})
    assert answer.status_code == 400 and "cursor" in answer.json()["message"]
