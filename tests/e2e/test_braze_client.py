"""An unmodified Braze client library (PyPI `braze-client` 2.3.x) manages profiles through the
running services, pointed at ONE base URL (ingest's `rest_endpoint`) with a REST API key: it
tracks identified and alias-only users, adds aliases, identifies, merges, deletes and
exports; a cohort import through the partner API then matches exactly the users it made.

braze-client 2.3 has methods for /users/track, /users/delete and /users/export/ids only;
/users/alias/new, /users/identify and /users/merge go through the client's own request path
(its Bearer header, retries and error handling) with the URL set as its methods set it. Any
exception the client raises fails the test, and so does an answer with `errors`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from braze.client import BrazeClient, BrazeClientError
from cohort_shared.testing import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
README = Path(__file__).resolve().parents[2] / "README.md"
_workspaces = itertools.count()


class ProfilesClient(BrazeClient):
    """The PyPI client plus the three profile endpoints it has no method for."""

    def _post(self, path: str, payload: dict) -> dict:
        self.request_url = self.api_url + path
        return self._BrazeClient__create_request(payload)

    def user_alias_new(self, user_aliases: list[dict]) -> dict:
        return self._post("/users/alias/new", {"user_aliases": user_aliases})

    def user_identify(self, aliases_to_identify: list[dict]) -> dict:
        return self._post("/users/identify", {"aliases_to_identify": aliases_to_identify})

    def user_merge(self, merge_updates: list[dict]) -> dict:
        return self._post("/users/merge", {"merge_updates": merge_updates})


def succeeded(answer: dict) -> dict:
    assert answer["success"] and answer["message"] == "success" and answer["errors"] == [], answer
    return answer


@pytest.fixture
async def client(stack, workspace_client):
    c = workspace_client(stack, f"braze{next(_workspaces)}")
    await c.new_key()
    yield c
    await c.close()


async def new_rest_key(client, **body) -> dict:
    answer = await client.admin("POST", "ingest", "/rest-api-keys", {"name": "backend", "permissions": [
        "users.track", "users.alias.new", "users.identify", "users.merge", "users.delete", "users.export.ids"], **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def alias(label: str, name: str) -> dict:
    return {"alias_label": label, "alias_name": name}


async def test_a_braze_client_manages_the_profiles_a_cohort_import_then_matches(client):
    key = await new_rest_key(client)
    assert key["rest_endpoint"] == client.stack.urls["ingest"]
    braze = ProfilesClient(api_key=key["rest_api_key"], api_url=key["rest_endpoint"])

    def call(method, *args, **kwargs) -> dict:
        return succeeded(getattr(braze, method)(*args, **kwargs))

    async def run(method, *args, **kwargs) -> dict:
        return await asyncio.to_thread(call, method, *args, **kwargs)

    tracked = await run("user_track", attributes=[
        {"external_id": "u1", "email": "u1@example.com", "first_name": "Ada", "plan": "pro"},
        {"external_id": "u2"}, {"external_id": "u3"}, {"external_id": "u4"},
        {"user_alias": alias("session", "s1"), "_update_existing_only": False},
        {"user_alias": alias("session", "s2"), "_update_existing_only": False, "visits": 2},
    ], events=[{"external_id": "u5", "name": "signed_up", "time": "2026-01-21T10:00:00Z"}],
        purchases=[{"external_id": "u1", "product_id": "p1", "currency": "EUR", "price": 9.5,
                    "time": "2026-01-21T10:00:00Z"}])
    assert (tracked["attributes_processed"], tracked["events_processed"], tracked["purchases_processed"]) == (6, 1, 1)
    u5 = await client.user_id("external_id:u5")  # an event creates its user
    await run("user_alias_new", [{**alias("email", "u2@example.com"), "external_id": "u2"},
                                 alias("email", "lead@example.com")])
    lead = await client.user_id("alias:email:lead@example.com")
    s2 = await client.user_id("alias:session:s2")
    await run("user_identify", [{"external_id": "s1-user", "user_alias": alias("session", "s1")},
                                {"external_id": "u3", "user_alias": alias("session", "s2")}])
    await run("user_merge", [{"identifier_to_merge": {"external_id": "u4"}, "identifier_to_keep": {"external_id": "u1"}}])
    deleted = await run("user_delete", external_ids=["u5"])
    assert deleted["deleted"] == 1
    u3 = await eventually(lambda: client.identity("alias:session:s2"),
                          until=lambda a: a.status_code == 200 and a.json()["external_id"] == "u3")
    assert u3.json()["user_id"] != s2  # merged into u3's profile
    await eventually(lambda: client.identity("external_id:u4"), until=lambda a: a.status_code == 404)
    await eventually(lambda: client.identity(u5), until=lambda a: a.status_code == 404)
    profile = (await client.identity("external_id:u1")).json()
    assert profile["custom_attributes"] == {"email": "u1@example.com", "first_name": "Ada", "plan": "pro"}

    await client.name_cohort("mp_braze", "Made by a Braze client")
    await eventually(lambda: client.cohort("mp_braze"), until=lambda c: "status" not in c)
    await client.change("mp_braze", {
        "user_ids": ["u1", "u2", "u3", "u4", "u5", "s1-user", "never-tracked"],
        "aliases": [alias("email", "lead@example.com"), alias("email", "u2@example.com"), alias("session", "s2")],
    })
    expected = {"u1", "u2", "u3", "s1-user", lead}
    await eventually(lambda: client.members("mp_braze"), until=lambda m: m == expected, timeout=30)

    exported = await eventually(
        lambda: asyncio.to_thread(call, "user_export", external_ids=["u1", "u2", "u3", "u5", "s1-user"]),
        until=lambda a: len(a["users"]) == 4 and all(u["cohorts"] for u in a["users"]), timeout=30)
    assert exported["invalid_user_ids"] == ["u5"]
    by_id = {u["external_id"]: u for u in exported["users"]}
    assert by_id["u1"]["email"] == "u1@example.com" and by_id["u1"]["custom_attributes"] == {"plan": "pro"}
    assert by_id["u2"]["user_aliases"] == [alias("email", "u2@example.com")]
    # s2 was merged into u3 by identify: its aliases and the attributes u3 lacked came along
    assert by_id["u3"]["custom_attributes"] == {"visits": 2} and alias("session", "s2") in by_id["u3"]["user_aliases"]
    assert all(u["cohorts"] == [{"partner": "mixpanel", "cohort_id": "mp_braze", "name": "Made by a Braze client"}]
               for u in exported["users"])
    by_email = await run("user_export", email="U1@example.com")
    assert [u["external_id"] for u in by_email["users"]] == ["u1"]


async def test_a_revoked_key_is_refused_on_the_next_request(client):
    key = await new_rest_key(client, permissions=["users.track", "users.export.ids"])
    braze = BrazeClient(api_key=key["rest_api_key"], api_url=key["rest_endpoint"])
    succeeded(await asyncio.to_thread(braze.user_track, attributes=[{"external_id": "r1"}]))
    with pytest.raises(BrazeClientError) as forbidden:
        await asyncio.to_thread(braze.user_delete, external_ids=["r1"])
    assert forbidden.value.args[0] == "This API key does not have the users.delete permission"
    assert (await client.admin("DELETE", "ingest", f"/rest-api-keys/{key['key_id']}")).status_code == 204
    with pytest.raises(BrazeClientError) as refused:
        await asyncio.to_thread(braze.user_track, attributes=[{"external_id": "r1"}])
    assert refused.value.args[0].startswith("Invalid API key")


async def test_the_readme_example_runs_against_the_services(client):
    key = await new_rest_key(client)
    example = re.search(r"<!-- braze-example -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert example, "README.md must hold the Braze client example after <!-- braze-example -->"
    env = {**os.environ, "BRAZE_REST_ENDPOINT": key["rest_endpoint"], "BRAZE_REST_API_KEY": key["rest_api_key"]}
    ran = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", example.group(1)], env=env,
                                  capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    await client.user_id("external_id:readme-user")


async def test_schemathesis_bodies_at_the_braze_routes_get_no_5xx(client, tmp_path):
    from tests.chaos.fuzz import fuzz_service

    key = await new_rest_key(client)
    result = await fuzz_service("ingest-braze-rest", key["rest_endpoint"], key["rest_api_key"], examples=40, seed=12,
                                reports=tmp_path, timeout=240, paths="^/users/")
    assert result.error is None, result.error
    print(f"schemathesis at the Braze routes: {result.requests} requests, {result.server_errors} 5xx, "
          f"{result.refusals_without_message} refusals without a message")
    assert result.requests > 300 and result.server_errors == 0 and result.refusals_without_message == 0, result.examples
