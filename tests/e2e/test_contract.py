"""The whole contract, end to end: the three services as separate processes on the real Kafka
broker and Redis, driven over HTTP as producers and operators would, with the public change
stream read back from Kafka."""

from __future__ import annotations

import collections
import itertools

import orjson
import pytest
from cohort_shared.testing import PARTNER_KEYS, eventually, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_workspaces = itertools.count()


@pytest.fixture
async def client(stack, workspace_client):
    c = workspace_client(stack, f"ws{next(_workspaces)}")
    await c.new_key()
    yield c
    await c.close()


async def test_data_import_key_lifecycle_and_validation(client):
    created = await client.admin("POST", "ingest", "/data-import-keys")
    second = created.json()
    listed = (await client.admin("GET", "ingest", "/data-import-keys")).json()["keys"]
    assert {k["key_id"] for k in listed} >= {second["key_id"]}
    assert all(second["data_import_key"] not in k["masked"] for k in listed)

    ok = await client.partner("/cohorts/users", {"cohort_id": "c1", "cohort_changes": [{"user_ids": ["x"]}]},
                              secret=second["data_import_key"])
    assert ok.status_code == 202
    assert (await client.admin("DELETE", "ingest", f"/data-import-keys/{second['key_id']}")).status_code == 204
    refused = await client.partner("/cohorts/users", {"cohort_id": "c1", "cohort_changes": [{"user_ids": ["x"]}]},
                                   secret=second["data_import_key"])
    assert (refused.status_code, refused.json()["message"]) == (401, "Invalid client secret")

    # Mixpanel's partner key on Amplitude's path is invalid.
    wrong_partner = await client.http.post(f"{client.stack.urls['ingest']}/partners/amplitude/cohorts", json={
        "partner_api_key": PARTNER_KEYS["mixpanel"], "client_secret": client.secret, "cohort_id": "c", "name": "n",
        "created_at": "2026-01-21T19:20:30+05:00"})
    assert (wrong_partner.status_code, wrong_partner.json()["message"]) == (401, "Invalid Partner API key")
    unparseable = await client.http.post(f"{client.stack.urls['ingest']}/partners/mixpanel/cohorts/users",
                                         content=b"{not json", headers={"content-type": "application/json"})
    assert unparseable.status_code == 400 and unparseable.json()["message"]
    bad_id = await client.partner("/cohorts/users", {"cohort_id": 5, "cohort_changes": [{"user_ids": ["x"]}]})
    assert (bad_id.status_code, bad_id.json()["message"]) == (400, "cohort_id must be a valid string")
    too_many = await client.partner("/cohorts/users", {"cohort_id": "c", "cohort_changes": [
        {"user_ids": [f"u{i}" for i in range(1001)]}]})
    assert too_many.status_code == 400 and "at most 1,000 identifiers" in too_many.json()["message"]
    no_token = await client.http.get(f"{client.stack.urls['segment_store']}/workspaces/{client.ws}/cohorts")
    assert no_token.status_code == 401


async def test_matching_rules_memberships_segments_and_the_change_stream(client, stack):
    # Profiles: identified users, an anonymous device, a device later identified, an alias-only user.
    await client.profiles("track", {"attributes": [{"external_id": "u1"}, {"external_id": "u2"},
                                                   {"external_id": "u3"}, {"device_id": "d1"}, {"device_id": "d2"}]})
    await client.profiles("alias/new", {"user_aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]})
    await client.profiles("identify", {"devices_to_identify": [{"external_id": "u9", "device_id": "d2"}]})
    await client.user_id("external_id:u9")
    await client.name_cohort("churn", "Churn risk")
    await client.name_cohort("power", "Power users")

    answer = await client.change("churn",
                                 {"user_ids": ["u1", "u2", "ghost"], "device_ids": ["d1", "d2"],
                                  "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]},
                                 {"user_ids": ["old"], "timestamp": "2009-12-31T23:59:59Z"})
    assert answer == {"message": "success", "accepted": 6, "dropped": {"pre_2010": 1}}
    await client.change("power", {"user_ids": ["u2", "u3"]})

    alias_user = await client.user_id("alias:email:a@x.com")
    d1_user = await client.user_id("device_id:d1")
    expected = {"u1", "u2", alias_user, d1_user}
    await eventually(lambda: client.members("churn"), until=lambda m: m == expected)
    report = await eventually(lambda: client.cohort("churn"),
                              until=lambda c: sum(c.get("sync_report", {}).get("unmatched", {}).values()) == 2)
    assert report["name"] == "Churn risk" and report["member_count"] == 4
    assert report["sync_report"]["unmatched"] == {"unknown_external_id": 1, "device_id_of_identified_user": 1}
    assert report["sync_report"]["dropped"] == {"pre_2010": 1}
    assert report["sync_report"]["received"] == 7 and report["sync_report"]["applied"] == 4

    # The identity that arrives late is applied then; a retried request changes nothing.
    await client.profiles("track", {"attributes": [{"external_id": "ghost"}]})
    await eventually(lambda: client.members("churn"), until=lambda m: "ghost" in m)
    await client.change("churn", {"user_ids": ["u2"], "should_remove": True})
    await client.change("churn", {"user_ids": ["u2"], "should_remove": True})
    await eventually(lambda: client.members("churn"), until=lambda m: m == expected - {"u2"} | {"ghost"})
    report = await eventually(lambda: client.cohort("churn"),
                              until=lambda c: c["sync_report"]["already_in_state"] >= 1)
    assert report["sync_report"]["applied"] == 6  # 4 + ghost + u2's removal

    # Segments.
    async def segment(filter_: dict) -> tuple[int, set[str]]:
        made = await client.admin("POST", "segment_store", "/segments", {"name": "s", "filter": filter_})
        assert made.status_code == 201, made.text
        seg = made.json()["segment_id"]
        size = (await client.admin("GET", "segment_store", f"/segments/{seg}")).json()["size"]
        page = (await client.admin("GET", "segment_store", f"/segments/{seg}/members?limit=1000")).json()
        return size, {m["external_id"] or m["user_id"] for m in page["members"]}

    assert await segment({"Mixpanel_Cohorts": {"includes": ["churn"]}}) == (4, {"u1", "ghost", alias_user, d1_user})
    assert await segment({"any": [{"Mixpanel_Cohorts": {"includes": ["churn"]}},
                                  {"Mixpanel_Cohorts": {"includes": ["power"]}}]}) == (
        6, {"u1", "u2", "u3", "ghost", alias_user, d1_user})
    size, members = await segment({"Mixpanel_Cohorts": {"excludes": ["churn"]}})
    assert {"u2", "u3", "u9"} <= members and not members & {"u1", "ghost"}
    bad = await client.admin("POST", "segment_store", "/segments", {"name": "s", "filter": {"Mixpanel_Cohorts": {}}})
    assert bad.status_code == 400 and bad.json()["message"]

    # Merge u3 into u1 (u1 joins power, u3 leaves it), then delete u1: its memberships go.
    u1, u3 = await client.user_id("external_id:u1"), await client.user_id("external_id:u3")
    await client.profiles("merge", {"merge_updates": [{"identifier_to_merge": {"external_id": "u3"},
                                                       "identifier_to_keep": {"external_id": "u1"}}]})
    await eventually(lambda: client.members("power"), until=lambda m: m == {"u1", "u2"})
    await client.profiles("delete", {"external_ids": ["u1"]})
    await eventually(lambda: client.members("churn"), until=lambda m: "u1" not in m)
    await eventually(lambda: client.members("power"), until=lambda m: m == {"u2"})
    usage = (await client.admin("GET", "segment_store", "/usage")).json()
    assert usage == {"data_points": 6 + 2}  # churn's applied + power's; merges and deletes are free

    # The change stream: exactly what happened, once each, in order per user.
    topic = stack.env["TOPIC_PREFIX"] + "membership.changes"
    mine = lambda records: [e for e in (orjson.loads(r.value) for r in records) if e["workspace_id"] == client.ws]  # noqa: E731
    records = await read_topic(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic, expected=10_000, timeout=3, settle=0)
    events = mine(records)
    assert len({e["event_id"] for e in events}) == len(events)
    per_user = collections.defaultdict(list)
    for e in events:
        per_user[(e["user_id"], e["cohort_id"])].append((e["change"], e["cause"]))
    assert per_user[(u1, "churn")] == [("added", "cohort_import"), ("removed", "delete")]
    assert per_user[(u1, "power")] == [("added", "merge"), ("removed", "delete")]
    assert per_user[(u3, "power")] == [("added", "cohort_import"), ("removed", "merge")]
    u2 = await client.user_id("external_id:u2")
    assert per_user[(u2, "churn")] == [("added", "cohort_import"), ("removed", "cohort_import")]
    for changes in per_user.values():  # never two adds or two removes in a row
        assert all(a[0] != b[0] for a, b in zip(changes, changes[1:], strict=False))
    assert sum(len(c) for c in per_user.values()) == len(events) == 6 + 2 + 2 + 2


async def test_workspaces_are_isolated(client, stack, workspace_client):
    other = workspace_client(stack, client.ws + "x")
    try:
        await client.profiles("track", {"attributes": [{"external_id": "solo"}]})
        await client.user_id("external_id:solo")
        await client.name_cohort("iso", "Isolated")
        await client.change("iso", {"user_ids": ["solo"]})
        await eventually(lambda: client.members("iso"), until=lambda m: m == {"solo"})
        assert (await other.cohort("iso")) == {"status": 404}
        assert (await other.identity("external_id:solo")).status_code == 404
        assert (await other.admin("GET", "segment_store", "/cohorts")).json() == {"cohorts": [], "next_cursor": None}
    finally:
        await other.close()
