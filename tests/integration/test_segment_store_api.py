"""segment-store on the real Kafka and Redis: every endpoint of docs/segments.md, driven by producing
its input messages onto the real topics (as identity-resolution and ingest would)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from cohort_shared import schemas as s
from cohort_shared.kafka import make_producer
from cohort_shared.publishing import partition_for
from cohort_shared.testing import eventually, read_topic, unique
from cohort_shared.topics import dlq_name
from prometheus_client import REGISTRY
from segment_store.app import create_app
from segment_store.domain.cursor import encode_cursor
from segment_store.settings import SegmentSettings

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer test-admin-token"}
TOPIC_OF = {
    s.MembershipResolvedBatch: "membership.resolved", s.MembershipUnmatchedBatch: "membership.unmatched",
    s.CohortNamed: "cohort.meta", s.CohortChangesReceived: "cohort.meta", s.ProfilesMerged: "identity.merges",
    s.ProfileDeleted: "identity.merges", s.ProfileUpdated: "identity.profiles",
}
_sources = itertools.count()


@dataclass
class Harness:
    """The app in this process (its change stream running), a client on it, a producer of its inputs."""

    http: httpx.AsyncClient
    producer: object
    settings: SegmentSettings

    async def send(self, *messages: s.Message) -> None:
        for message in messages:
            topic = self.settings.topics.name(TOPIC_OF[type(message)])
            # A batch of resolved changes goes to its users' partition, as identity-resolution sends it.
            partition = (partition_for(message.rows[0][2].encode(), 3)
                         if isinstance(message, s.MembershipResolvedBatch) else None)
            await self.producer.send(topic, message.to_bytes(), key=message.kafka_key(), partition=partition)
        await self.producer.flush()

    async def tombstone(self, user_id: str) -> None:
        await self.producer.send_and_wait(self.settings.topics.identity_profiles, None, key=user_id.encode())

    async def get(self, path: str, **params) -> httpx.Response:
        return await self.http.get(path, params=params, headers=ADMIN)

    async def get_json(self, path: str, **params) -> dict:
        assert (response := await self.get(path, **params)).status_code == 200, response.text
        return response.json()

    async def until(self, path: str, check, **params) -> dict:
        """GET `path` until `check(body)` holds (the stream applies asynchronously)."""
        async def probe():
            response = await self.get(path, **params)
            return response.json() if response.status_code == 200 else {"status": response.status_code}
        return await eventually(probe, until=check, timeout=30)

    async def changes(self, expected: int, settle: float = 1.0) -> list[dict]:
        records = await read_topic(self.settings.kafka_bootstrap_servers, self.settings.topics.membership_changes,
                                   expected=expected, timeout=30, settle=settle)
        return [orjson.loads(r.value) for r in records]


@pytest.fixture
async def store(stack_env, kafka_topics, redis_client) -> AsyncIterator[Harness]:
    settings = SegmentSettings(**stack_env, INSTANCE_ID=unique("it-"))
    app = create_app(settings)
    producer = make_producer(settings)
    await producer.start()
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://segment-store") as http:
            yield Harness(http, producer, settings)
    await producer.stop()


def resolved(ws: str, cohort: str, user: str, change: str = "add", *, partner: str = "mixpanel",
             external_id: str | None = None, parked: bool = False) -> s.MembershipResolvedBatch:
    """One resolved change, as a batch of one row (identity-resolution sends batches)."""
    now = s.utc_now()
    accepted_ms = int(now.timestamp() * 1000)
    row = (partner, cohort, user, external_id, change, f"src-{next(_sources)}", accepted_ms, parked)
    return s.MembershipResolvedBatch(workspace_id=ws, resolved_at=now, rows=[row])


def unmatched(ws: str, cohort: str, reason: str, value: str, *, partner: str = "mixpanel") -> s.MembershipUnmatchedBatch:
    return s.MembershipUnmatchedBatch(workspace_id=ws, partner=partner, cohort_id=cohort, accepted_at=s.utc_now(),
                                      rows=[("alias", value, "email", "add", reason, "r1:5", None)])


def named(ws: str, cohort: str, name: str, partner: str = "mixpanel") -> s.CohortNamed:
    return s.CohortNamed(workspace_id=ws, partner=partner, cohort_id=cohort, name=name, named_at=s.utc_now())


def profile(ws: str, user: str, external_id: str | None = None, aliases=(), devices=()) -> s.ProfileUpdated:
    return s.ProfileUpdated(
        workspace_id=ws, user_id=user, external_id=external_id, identified=external_id is not None,
        aliases=[s.Alias(alias_name=n, alias_label=label) for label, n in aliases], device_ids=list(devices),
        updated_at=s.utc_now(),
    )


async def test_cohorts_are_listed_once_named_and_report_what_was_sent(store):
    ws = "acme"
    now = s.utc_now()
    await store.send(
        named(ws, "mp_1", "Churn risk"),
        named(ws, "mp_empty", "Nobody yet"),
        s.CohortChangesReceived(workspace_id=ws, partner="mixpanel", cohort_id="mp_1", request_id="r1", received=7,
                                dropped_pre_2010=1, received_at=now),
        resolved(ws, "mp_1", "U1", external_id="u1"),
        resolved(ws, "mp_1", "U2"),
        resolved(ws, "mp_1", "U1", external_id="u1"),          # already a member
        resolved(ws, "mp_1", "U3", "remove"),                  # not a member
        unmatched(ws, "mp_1", "unknown_alias", "a@x.com"),
        resolved(ws, "mp_1", "U4", parked=True),               # the parked alias, applied late
        resolved(ws, "mp_new", "U1", external_id="u1"),        # a cohort never named
    )
    # Users' records sit on different partitions, and cohort.meta (the name, what was sent) on
    # the cohort's: applied in any order, so wait for all of them.
    cohort = await store.until(f"/workspaces/{ws}/cohorts/mp_1",
                               lambda b: b.get("sync_report", {}).get("already_in_state") == 2
                               and b["sync_report"]["applied"] == 3 and b.get("member_count") == 3
                               and b["sync_report"]["received"] == 7 and b.get("name") == "Churn risk")
    assert cohort["partner"] == "mixpanel" and cohort["name"] == "Churn risk" and cohort["member_count"] == 3
    assert cohort["sync_report"] == {"received": 7, "applied": 3, "already_in_state": 2,
                                     "unmatched": {"unknown_alias": 1}, "dropped": {"pre_2010": 1}}
    assert cohort["updated_at"]
    listed = await store.until(f"/workspaces/{ws}/cohorts", lambda b: len(b.get("cohorts", [])) == 3)
    by_id = {c["cohort_id"]: c for c in listed["cohorts"]}
    assert by_id["mp_empty"] == {**by_id["mp_empty"], "name": "Nobody yet", "member_count": 0}
    assert by_id["mp_new"]["name"] == "mp_new" and by_id["mp_new"]["member_count"] == 1
    assert set(by_id["mp_1"]) == {"partner", "cohort_id", "name", "member_count", "updated_at"}

    events = await store.changes(expected=4)
    assert [(e["user_id"], e["cohort_id"], e["change"], e["cause"]) for e in events if e["user_id"] == "U1"] == [
        ("U1", "mp_1", "added", "cohort_import"), ("U1", "mp_new", "added", "cohort_import")]
    assert len(events) == 4 and len({e["event_id"] for e in events}) == 4
    first = next(e for e in events if e["user_id"] == "U1")
    s.MembershipChanged.model_validate(first)
    assert first["external_id"] == "u1" and first["workspace_id"] == ws and first["partner"] == "mixpanel"
    assert next(e for e in events if e["user_id"] == "U2")["external_id"] is None
    assert await store.get_json(f"/workspaces/{ws}/usage") == {"data_points": 4}


async def test_a_cohort_id_used_by_two_partners_is_ambiguous_by_id_alone(store):
    ws = "acme"
    await store.send(named(ws, "shared", "Mixpanel's"), named(ws, "shared", "Amplitude's", partner="amplitude"),
                     resolved(ws, "shared", "U1", partner="amplitude"))
    # A cohort is listed once named or once it has a member: wait for both names as well.
    await store.until(f"/workspaces/{ws}/cohorts", lambda b: sorted(c["name"] for c in b.get("cohorts", []))
                      == ["Amplitude's", "Mixpanel's"])
    for path in ("/cohorts/shared", "/cohorts/shared/members"):
        response = await store.get(f"/workspaces/{ws}{path}")
        assert response.status_code == 409, response.text
        assert "cohort_id 'shared'" in response.json()["message"]
    body = await store.until(f"/workspaces/{ws}/cohorts/shared", lambda b: b.get("member_count") == 1,
                             partner="amplitude")
    assert body["name"] == "Amplitude's"
    members = await store.get_json(f"/workspaces/{ws}/cohorts/shared/members", partner="amplitude")
    assert members == {"members": [{"user_id": "U1", "external_id": None}], "next_cursor": None}
    for path in ("/cohorts/nope", "/cohorts/nope/members"):
        response = await store.get(f"/workspaces/{ws}{path}")
        assert response.status_code == 404 and "cohort_id 'nope'" in response.json()["message"]


async def test_members_page_with_a_cursor_returning_each_steady_member_once(store):
    ws = "acme"
    users = [f"U{i:03d}" for i in range(40)]
    await store.send(*(profile(ws, u, f"ext-{u}") for u in users[:5]),
                     *(resolved(ws, "mp_1", u) for u in users))
    await store.until(f"/workspaces/{ws}/cohorts/mp_1", lambda b: b.get("member_count") == 40)
    first = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members", limit=15)
    assert len(first["members"]) == 15 and first["next_cursor"]
    seen = [m["user_id"] for m in first["members"]]
    # Meanwhile: some members not yet returned leave, newcomers join.
    leaving = [u for u in users[5:] if u not in seen][:5]
    await store.send(*(resolved(ws, "mp_1", u, "remove") for u in leaving),
                     *(resolved(ws, "mp_1", f"N{i}") for i in range(6)))
    await store.until(f"/workspaces/{ws}/cohorts/mp_1", lambda b: b.get("member_count") == 41)
    cursor = first["next_cursor"]
    while cursor:
        page = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members", limit=15, cursor=cursor)
        seen += [m["user_id"] for m in page["members"]]
        cursor = page["next_cursor"]
    steady = set(users) - set(leaving)
    assert len(seen) == len(set(seen)), "a member came twice"
    assert steady <= set(seen) and not set(leaving) & set(seen[15:])
    everyone = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members", limit=1000)
    assert everyone["next_cursor"] is None and len(everyone["members"]) == 41
    externals = {m["user_id"]: m["external_id"] for m in everyone["members"]}
    assert externals["U000"] == "ext-U000" and externals["N0"] is None
    exact = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members", limit=41)
    assert exact["next_cursor"] is None, "the last page has no next cursor"
    default = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members")
    assert len(default["members"]) == 41


async def test_bad_cursors_and_limits_are_400(store):
    ws = "acme"
    await store.send(resolved(ws, "mp_1", "U1"), resolved(ws, "mp_2", "U1"))
    await store.until(f"/workspaces/{ws}/cohorts", lambda b: len(b.get("cohorts", [])) == 2)
    other = await store.get_json(f"/workspaces/{ws}/cohorts/mp_2/members", limit=1)
    for params, word in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"),
                         ({"cursor": "garbage"}, "cursor"), ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor")):
        response = await store.get(f"/workspaces/{ws}/cohorts/mp_1/members", **params)
        assert response.status_code == 400 and word in response.json()["message"], response.text
    other_cursor = encode_cursor(f"cohort:{ws}:2", 1)  # a well-formed cursor of another listing
    assert (await store.get(f"/workspaces/{ws}/cohorts/mp_1/members", cursor=other_cursor)).status_code == 400
    assert other["next_cursor"] is None
    response = await store.get("/workspaces/bad%20name/cohorts")
    assert response.status_code == 400 and "workspace" in response.json()["message"]


async def test_a_users_cohorts_by_every_kind_of_user_ref(store):
    ws = "acme"
    await store.send(
        named(ws, "mp_1", "Churn risk"), named(ws, "a_1", "Power users", partner="amplitude"),
        profile(ws, "U1", "u1", aliases=[("email", "a@x.com")], devices=["d1"]),
        profile(ws, "U2", None, devices=["d2"]),
        resolved(ws, "mp_1", "U1", external_id="u1"), resolved(ws, "a_1", "U1", partner="amplitude"),
    )
    expected = {"user_id": "U1", "cohorts": [
        {"partner": "amplitude", "cohort_id": "a_1", "name": "Power users"},
        {"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk"}]}
    # Profiles, memberships and names (cohort.meta) arrive on different topics and partitions,
    # applied in any order: wait for each reference to read in full.
    for ref in ("U1", "external_id:u1", "alias:email:a@x.com", "device_id:d1"):
        assert await store.until(f"/workspaces/{ws}/users/{ref}/cohorts", lambda b: b == expected) == expected
    unmatched = {"user_id": "U2", "cohorts": []}
    assert await store.until(f"/workspaces/{ws}/users/device_id:d2/cohorts", lambda b: b == unmatched) == unmatched
    for ref in ("U9", "external_id:nobody", "alias:email:b@x.com", "device_id:d9"):
        response = await store.get(f"/workspaces/{ws}/users/{ref}/cohorts")
        assert response.status_code == 404 and "user_ref" in response.json()["message"]
    response = await store.get(f"/workspaces/{ws}/users/alias:email/cohorts")
    assert response.status_code == 400 and "alias" in response.json()["message"]


async def test_a_profile_update_moves_its_identifiers_and_a_tombstone_drops_them(store):
    ws = "acme"
    await store.send(profile(ws, "U1", "u1", devices=["d1"]), resolved(ws, "mp_1", "U1"))
    await store.until(f"/workspaces/{ws}/users/device_id:d1/cohorts", lambda b: b.get("user_id") == "U1")
    await store.send(profile(ws, "U1", "u1-renamed"))
    await store.until(f"/workspaces/{ws}/users/external_id:u1-renamed/cohorts", lambda b: b.get("user_id") == "U1")
    assert (await store.get(f"/workspaces/{ws}/users/device_id:d1/cohorts")).status_code == 404
    assert (await store.get(f"/workspaces/{ws}/users/external_id:u1/cohorts")).status_code == 404
    members = await store.get_json(f"/workspaces/{ws}/cohorts/mp_1/members")
    assert members["members"] == [{"user_id": "U1", "external_id": "u1-renamed"}]
    await store.tombstone("U1")
    await store.until(f"/workspaces/{ws}/users/U1/cohorts", lambda b: b.get("status") == 404)
    assert (await store.get(f"/workspaces/{ws}/users/external_id:u1-renamed/cohorts")).status_code == 404


async def test_merges_and_deletions_move_memberships_with_their_events_for_free(store):
    ws = "acme"
    await store.send(
        profile(ws, "KEPT", "k1"), profile(ws, "MERGED", "m1"), profile(ws, "GONE", "g1"),
        resolved(ws, "c_a", "MERGED", external_id="m1"), resolved(ws, "c_b", "MERGED", external_id="m1"),
        resolved(ws, "c_b", "KEPT", external_id="k1"), resolved(ws, "c_a", "GONE", external_id="g1"),
        resolved(ws, "c_b", "GONE", external_id="g1"),
    )
    await store.until(f"/workspaces/{ws}/usage", lambda b: b.get("data_points") == 5)
    now = s.utc_now()
    await store.send(
        s.ProfilesMerged(workspace_id=ws, merged_user_id="MERGED", merged_external_id="m1", kept_user_id="KEPT",
                         kept_external_id="k1", source_id="merge-1", merged_at=now),
        s.ProfileDeleted(workspace_id=ws, user_id="GONE", external_id="g1", source_id="del-1", deleted_at=now),
    )
    events = await store.changes(expected=5 + 5)
    # Read back partition by partition: only per-user order is defined.
    tail = [(e["user_id"], e["external_id"], e["cohort_id"], e["change"], e["cause"]) for e in events
            if e["cause"] != "cohort_import"]
    merge_events = [t for t in tail if t[4] == "merge"]
    assert merge_events == [("KEPT", "k1", "c_a", "added", "merge"), ("MERGED", "m1", "c_a", "removed", "merge"),
                            ("MERGED", "m1", "c_b", "removed", "merge")]
    assert sorted(t for t in tail if t[4] == "delete") == [("GONE", "g1", "c_a", "removed", "delete"),
                                                          ("GONE", "g1", "c_b", "removed", "delete")]
    assert await store.get_json(f"/workspaces/{ws}/usage") == {"data_points": 5}
    kept = await store.get_json(f"/workspaces/{ws}/users/KEPT/cohorts")
    assert [c["cohort_id"] for c in kept["cohorts"]] == ["c_a", "c_b"]
    c_a = await store.get_json(f"/workspaces/{ws}/cohorts/c_a/members")
    assert c_a["members"] == [{"user_id": "KEPT", "external_id": "k1"}]
    for gone in ("MERGED", "GONE"):
        assert (await store.get(f"/workspaces/{ws}/users/{gone}/cohorts")).status_code == 404

    # Late changes resolved before the merge/deletion but consumed after it: the merged
    # profile's land on the kept one; the deleted profile's are counted, never applied.
    await store.send(resolved(ws, "c_c", "MERGED", external_id="m1"), resolved(ws, "c_c", "GONE"))
    # The two late changes sit on two partitions: wait for both, in whichever order they apply.
    cohort = await store.until(f"/workspaces/{ws}/cohorts/c_c",
                               lambda b: sum(b.get("sync_report", {}).get("unmatched", {}).values()) == 1
                               and b.get("member_count") == 1)
    assert cohort["member_count"] == 1 and cohort["sync_report"]["unmatched"] == {"profile_deleted": 1}
    late = [e for e in await store.changes(expected=11) if e["cohort_id"] == "c_c"]
    assert [(e["user_id"], e["external_id"], e["cohort_id"], e["change"], e["cause"]) for e in late] == [
        ("KEPT", "k1", "c_c", "added", "cohort_import")]


async def test_segments_are_validated_stored_sized_listed_and_queried(store):
    ws = "acme"
    users = [f"U{i}" for i in range(1, 7)]
    await store.send(*(profile(ws, u, u.lower()) for u in users))
    await store.send(*(resolved(ws, "mp_a", u) for u in users[:3]),          # U1 U2 U3
                     *(resolved(ws, "mp_b", u) for u in users[2:5]),         # U3 U4 U5
                     resolved(ws, "amp_a", "U6", partner="amplitude"))
    await store.until(f"/workspaces/{ws}/usage", lambda b: b.get("data_points") == 7)

    async def create(filter_: object) -> httpx.Response:
        return await store.http.post(f"/workspaces/{ws}/segments", json={"name": "s", "filter": filter_}, headers=ADMIN)

    for bad_filter, named_in_message in (({"Mixpanel_Cohorts": {"includes": []}}, "filter.Mixpanel_Cohorts.includes"),
                                         ({"all": [{"Nope_Thing": 1}]}, "filter.all[0]")):
        bad = await create(bad_filter)
        assert bad.status_code == 400 and bad.json()["message"].startswith(named_in_message), bad.text
    no_name = await store.http.post(f"/workspaces/{ws}/segments", json={"filter": {}}, headers=ADMIN)
    assert no_name.status_code == 400 and "name" in no_name.json()["message"]
    not_json = await store.http.post(f"/workspaces/{ws}/segments", content=b"{", headers=ADMIN)
    assert not_json.status_code == 400

    cases = [
        ({"Mixpanel_Cohorts": {"includes": ["mp_a", "mp_b"]}}, {"U1", "U2", "U3", "U4", "U5"}),
        ({"Mixpanel_Cohorts": {"excludes": ["mp_a"]}}, {"U4", "U5", "U6"}),
        ({"all": [{"Mixpanel_Cohorts": {"includes": ["mp_a"]}}, {"Mixpanel_Cohorts": {"includes": ["mp_b"]}}]}, {"U3"}),
        ({"any": [{"Amplitude_Cohorts": {"includes": ["amp_a"]}}, {"not": {"Mixpanel_Cohorts": {"includes": ["mp_a"]}}}]},
         {"U4", "U5", "U6"}),
        ({"Amplitude_Cohorts": {"includes": ["mp_a"]}}, set()),  # that ID is mixpanel's, not amplitude's
        ({"Mixpanel_Cohorts": {"includes": ["not_yet"]}}, set()),
    ]
    for filter_, expected in cases:
        created = await create(filter_)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == "s" and body["filter"] == filter_ and body["segment_id"]
        path = f"/workspaces/{ws}/segments/{body['segment_id']}"
        assert await store.get_json(path) == {**body, "size": len(expected)}
        listed, cursor = [], None
        while True:
            page = await store.get_json(f"{path}/members", limit=2, **({"cursor": cursor} if cursor else {}))
            listed += page["members"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(m["user_id"] for m in listed) == sorted(expected), filter_
        assert all(m["external_id"] == m["user_id"].lower() for m in listed)
        for user in users:
            for ref in (user, f"external_id:{user.lower()}"):
                contains = await store.get_json(f"{path}/contains/{ref}")
                assert contains == {"contains": user in expected}, (filter_, ref)

    segment = (await create({"Mixpanel_Cohorts": {"includes": ["mp_a"]}})).json()
    path = f"/workspaces/{ws}/segments/{segment['segment_id']}"
    assert (await store.get(f"{path}/contains/external_id:nobody")).status_code == 404
    assert (await store.get(f"{path}/members", cursor="zzz")).status_code == 400
    assert (await store.get(f"{path}/members", limit=5000)).status_code == 400
    for missing in ("/segments/nope", "/segments/nope/members", "/segments/nope/contains/U1"):
        response = await store.get(f"/workspaces/{ws}{missing}")
        assert response.status_code == 404 and "segment_id" in response.json()["message"]


async def test_a_filter_is_sized_without_saving_and_usage_is_kept_by_the_hour(store):
    ws = "acme"
    users = [f"U{i}" for i in range(1, 5)]
    await store.send(*(profile(ws, u, u.lower()) for u in users))
    await store.send(*(resolved(ws, "mp_a", u) for u in users[:3]), resolved(ws, "mp_b", "U3"),
                     resolved(ws, "mp_b", "U4"), resolved(ws, "mp_b", "U4"))  # the last one changes nothing
    await store.until(f"/workspaces/{ws}/usage", lambda b: b.get("data_points") == 5)

    async def preview(body: object) -> httpx.Response:
        return await store.http.post(f"/workspaces/{ws}/segments/preview", json=body, headers=ADMIN)

    for filter_, size in (({"Mixpanel_Cohorts": {"includes": ["mp_a"]}}, 3),
                          ({"all": [{"Mixpanel_Cohorts": {"includes": ["mp_a"]}},
                                    {"Mixpanel_Cohorts": {"excludes": ["mp_b"]}}]}, 2),
                          ({"not": {"Mixpanel_Cohorts": {"includes": ["mp_a", "mp_b"]}}}, 0)):
        answer = await preview({"filter": filter_})
        assert answer.status_code == 200 and answer.json() == {"filter": filter_, "size": size}, answer.text
    bad = await preview({"filter": {"Mixpanel_Cohorts": {"includes": []}}})
    assert bad.status_code == 400 and bad.json()["message"].startswith("filter.Mixpanel_Cohorts.includes")
    assert (await preview({"name": "no filter"})).status_code == 400
    assert (await store.get_json(f"/workspaces/{ws}/segments"))["segments"] == []  # nothing saved

    history = (await store.get_json(f"/workspaces/{ws}/usage/history"))["hours"]
    assert sum(h["data_points"] for h in history) == 5
    assert all(h["hour"].endswith(":00:00Z") for h in history)
    assert history == sorted(history, key=lambda h: h["hour"])
    assert (await store.get(f"/workspaces/{ws}/usage/history", hours=0)).status_code == 400
    assert (await store.get_json("/workspaces/other/usage/history")) == {"hours": []}


async def test_a_workspace_sees_nothing_of_another(store):
    await store.send(profile("ws1", "U1", "u1"), resolved("ws1", "mp_1", "U1", external_id="u1"))
    await store.until("/workspaces/ws1/cohorts/mp_1", lambda b: b.get("member_count") == 1)
    segment = await store.http.post("/workspaces/ws1/segments", headers=ADMIN,
                                    json={"name": "s", "filter": {"Mixpanel_Cohorts": {"includes": ["mp_1"]}}})
    segment_id = segment.json()["segment_id"]
    assert await store.get_json("/workspaces/ws2/cohorts") == {"cohorts": [], "next_cursor": None}
    assert await store.get_json("/workspaces/ws2/segments") == {"segments": [], "next_cursor": None}
    assert await store.get_json("/workspaces/ws2/usage") == {"data_points": 0}
    for path in ("/cohorts/mp_1", "/cohorts/mp_1/members", "/users/U1/cohorts", "/users/external_id:u1/cohorts",
                 f"/segments/{segment_id}", f"/segments/{segment_id}/members", f"/segments/{segment_id}/contains/U1"):
        assert (await store.get(f"/workspaces/ws2{path}")).status_code == 404, path


async def test_the_operator_api_needs_the_token_and_ops_routes_answer(store):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-admin-token"}):
        response = await store.http.get("/workspaces/acme/cohorts", headers=headers)
        assert response.status_code == 401 and "message" in response.json()
    assert (await store.http.get("/healthz")).status_code == 200
    ready = await eventually(lambda: store.http.get("/readyz"), until=lambda r: r.status_code == 200)
    assert ready.json()["checks"] == {"kafka": True, "redis": True, "processor": True}
    assert ready.json()["processor"]["state"] == "running" and ready.json()["processor"]["joined"]
    metrics = await store.http.get("/metrics")
    assert metrics.status_code == 200 and "stream_records_total" in metrics.text


async def test_published_events_are_counted_by_change_and_cause(store):
    def published(change: str) -> float:
        labels = {"change": change, "cause": "cohort_import"}
        return REGISTRY.get_sample_value("segment_membership_changes_total", labels) or 0.0

    def latencies() -> float:
        return REGISTRY.get_sample_value("cohort_change_latency_seconds_count") or 0.0

    before = published("added"), published("removed"), latencies()
    await store.send(resolved("ws1", "mp_9", "U1"), resolved("ws1", "mp_9", "U2"), resolved("ws1", "mp_9", "U1"),
                     resolved("ws1", "mp_9", "U1", "remove"))  # the second add of U1 changes nothing: no event

    async def counted() -> tuple[float, float, float]:
        return published("added") - before[0], published("removed") - before[1], latencies() - before[2]
    # Each event's latency is observed once, with the events' counts.
    assert await eventually(counted, until=lambda c: c == (2, 1, 3), timeout=30) == (2, 1, 3)


async def test_a_poison_record_goes_to_its_dlq_and_the_stream_moves_on(store):
    topic = store.settings.topics.membership_resolved
    await store.producer.send_and_wait(topic, b"{not json", key=b"U1")
    await store.producer.send_and_wait(topic, orjson.dumps({"type": "membership_resolved", "workspace_id": "bad ws"}),
                                       key=b"U1")
    await store.send(resolved("acme", "mp_1", "U1"))
    await store.until("/workspaces/acme/cohorts/mp_1", lambda b: b.get("member_count") == 1)
    dead = await read_topic(store.settings.kafka_bootstrap_servers, dlq_name(topic), expected=2)
    assert [r.value for r in dead][0] == b"{not json"
    reasons = [dict(r.headers)["dlq.reason"] for r in dead]
    assert all(reason.startswith(b"invalid membership.resolved record: schema validation failed") for reason in reasons), reasons
    assert not any(b"bad ws" in reason for reason in reasons), "a DLQ reason must not copy values out of the record"
    assert dict(dead[0].headers)["dlq.service"] == b"segment-store"


async def test_cohorts_and_segments_are_listed_a_page_at_a_time(store):
    ws = "paged"
    await store.send(*[named(ws, f"mp_{i:02d}", f"Cohort {i}") for i in range(7)])
    await store.until(f"/workspaces/{ws}/cohorts", lambda b: len(b.get("cohorts", [])) == 7, limit=1000)
    for _ in range(3):
        await store.http.post(f"/workspaces/{ws}/segments", headers=ADMIN,
                              json={"name": "s", "filter": {"Mixpanel_Cohorts": {"includes": ["mp_01"]}}})

    async def walk(path: str, field: str, limit: int) -> list[dict]:
        items, cursor = [], None
        while True:
            page = await store.get_json(path, limit=limit, **({"cursor": cursor} if cursor else {}))
            assert len(page[field]) <= limit
            items += page[field]
            if (cursor := page["next_cursor"]) is None:
                return items

    cohorts = await walk(f"/workspaces/{ws}/cohorts", "cohorts", 3)
    assert [c["cohort_id"] for c in cohorts] == [f"mp_{i:02d}" for i in range(7)]
    segments = await walk(f"/workspaces/{ws}/segments", "segments", 2)
    assert len({s["segment_id"] for s in segments}) == 3 and {s["name"] for s in segments} == {"s"}
    for path in ("cohorts", "segments"):
        assert (await store.get(f"/workspaces/{ws}/{path}", limit=1001)).status_code == 400
        bad = await store.get(f"/workspaces/{ws}/{path}", cursor="nope")
        assert bad.status_code == 400 and "cursor" in bad.json()["message"]
