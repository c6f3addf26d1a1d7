"""Webhook delivery end to end: delivery as its own process on the real Kafka and Redis, a
real HTTP receiver that verifies every signature with the `standardwebhooks` package, and
change events on `membership.changes` — published by segment-store from a cohort import,
or directly (transactionally, keyed by user, as segment-store does) where a test needs
exact control."""

from __future__ import annotations

import collections
import itertools

import pytest
from cohort_shared.testing import ServiceProcesses, eventually, unique
from cohort_shared.webhook_receiver import Receiver

from .delivery_helpers import DeliveryApi, change_event, publish_changes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_workspaces = itertools.count()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory):
    test_id = unique("d")
    services = ServiceProcesses.configure(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url,
            "TOPIC_PREFIX": f"{test_id}.", "REDIS_KEY_PREFIX": f"{test_id}:", "TOPIC_PARTITIONS": "3",
            "DELIVERY_RETRY_BASE_SECONDS": "0.2", "DELIVERY_RETRY_MAX_DELAY_SECONDS": "1",
            "DELIVERY_BREAKER_COOLDOWN_SECONDS": "0.5",
        },
        tmp_path_factory.mktemp("delivery-logs"),
    )
    try:
        services.start_all(with_delivery=True)
        yield services
    finally:
        services.stop_all()


@pytest.fixture
async def receiver():
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def api(stack):
    workspace = f"dws{next(_workspaces)}"
    client = DeliveryApi(stack.urls["delivery"], stack.env["ADMIN_TOKEN"], workspace)
    client.workspace = workspace
    yield client
    await client.close()


def topic(stack) -> str:
    return f"{stack.env['TOPIC_PREFIX']}membership.changes"


async def webhook_for(api: DeliveryApi, receiver: Receiver, name: str, **body) -> dict:
    created = await api.create(receiver.hook_url(name), **body)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    receiver.expect(name, created["secret"])
    return created


def received_ids(receiver: Receiver, name: str) -> list[str]:
    return [r.webhook_id for r in receiver.received[name]]


def assert_per_user_order(received, published) -> None:
    """Per user, first arrivals come in the order the events were published."""
    first_seen: dict[str, list[str]] = collections.defaultdict(list)
    for item in received:
        if item.webhook_id not in first_seen[item.user_id]:
            first_seen[item.user_id].append(item.webhook_id)
    expected: dict[str, list[str]] = collections.defaultdict(list)
    for event in published:
        expected[event["user_id"]].append(event["event_id"])
    assert first_seen == expected


async def test_every_matching_event_arrives_signed_once_per_id_in_user_order(stack, api, receiver):
    everything = await webhook_for(api, receiver, "all")
    await webhook_for(api, receiver, "churn-adds", filter={"cohort_ids": ["churn"], "changes": ["added"]})
    users = [f"u{i}" for i in range(25)]
    events = [change_event(api.workspace, users[i % 25], ["churn", "power"][i % 2], ["added", "removed"][(i // 2) % 2])
              for i in range(400)]
    events.append(change_event("another-workspace", "u0", "churn"))  # never sent to this workspace's hooks
    for chunk in range(0, len(events), 100):
        await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), events[chunk:chunk + 100])

    mine = [e for e in events if e["workspace_id"] == api.workspace]
    await eventually(lambda: _async(set(received_ids(receiver, "all"))), until=lambda s: s >= {e["event_id"] for e in mine},
                     timeout=60)
    wanted = [e for e in mine if e["cohort_id"] == "churn" and e["change"] == "added"]
    await eventually(lambda: _async(set(received_ids(receiver, "churn-adds"))),
                     until=lambda s: s >= {e["event_id"] for e in wanted}, timeout=60)

    assert set(received_ids(receiver, "all")) == {e["event_id"] for e in mine}
    assert set(received_ids(receiver, "churn-adds")) == {e["event_id"] for e in wanted}
    for name in ("all", "churn-adds"):
        assert all(r.event["event_id"] == r.webhook_id for r in receiver.received[name])  # duplicates share the id
    assert_per_user_order(receiver.received["all"], mine)
    assert_per_user_order(receiver.received["churn-adds"], wanted)
    assert receiver.refused_signatures == 0
    state = await eventually(lambda: api.get(everything["webhook_id"]), until=lambda s: s["delivered"] >= len(mine))
    assert (state["pending"], state["failed"]) == (0, 0)


async def _async(value):
    return value


async def test_a_failing_endpoint_retries_without_delaying_another_then_catches_up_in_order(stack, api, receiver):
    failing = await webhook_for(api, receiver, "failing")
    healthy = await webhook_for(api, receiver, "healthy")
    receiver.answer("failing", 500)
    events = [change_event(api.workspace, f"u{i % 10}", "churn", ["added", "removed"][(i // 10) % 2]) for i in range(100)]
    await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), events)

    await eventually(lambda: _async(len(set(received_ids(receiver, "healthy")))), until=lambda n: n == 100, timeout=30)
    assert received_ids(receiver, "failing") == []
    state = await eventually(lambda: api.get(failing["webhook_id"]),
                             until=lambda s: s["last_error"] == "HTTP 500" and s["pending"] == 100)
    assert (state["delivered"], state["failed"]) == (0, 0)
    attempts = (await api.http.get(f"/webhooks/{failing['webhook_id']}/attempts", params={"limit": 5})).json()
    assert [a["result"] for a in attempts["attempts"]] == ["retrying"] * len(attempts["attempts"])
    assert attempts["attempts"] and attempts["attempts"][0]["status_code"] == 500

    receiver.answer("failing", 200)
    await eventually(lambda: _async(len(set(received_ids(receiver, "failing")))), until=lambda n: n == 100, timeout=60)
    assert_per_user_order(receiver.received["failing"], events)
    assert_per_user_order(receiver.received["healthy"], events)
    assert (await api.get(healthy["webhook_id"]))["delivered"] == 100


async def test_a_paused_webhook_keeps_its_backlog_and_delivers_it_on_resume(stack, api, receiver):
    paused = await webhook_for(api, receiver, "paused")
    answer = await api.http.patch(f"/webhooks/{paused['webhook_id']}", json={"status": "paused"})
    assert (answer.status_code, answer.json()["status"]) == (200, "paused")
    events = [change_event(api.workspace, f"u{i % 5}", "churn") for i in range(30)]
    await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), events)

    await eventually(lambda: api.get(paused["webhook_id"]), until=lambda s: s["pending"] == 30)
    assert receiver.requests["paused"] == 0
    answer = await api.http.patch(f"/webhooks/{paused['webhook_id']}", json={"status": "active"})
    assert answer.status_code == 200
    await eventually(lambda: _async(len(received_ids(receiver, "paused"))), until=lambda n: n >= 30, timeout=30)
    assert_per_user_order(receiver.received["paused"], events)
    assert (await eventually(lambda: api.get(paused["webhook_id"]), until=lambda s: s["pending"] == 0))["delivered"] == 30


async def test_events_of_an_aborted_transaction_are_never_delivered(stack, api, receiver):
    await webhook_for(api, receiver, "committed-only")
    first, aborted, last = (change_event(api.workspace, "same-user", "churn", change) for change in
                            ("added", "removed", "added"))
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    await publish_changes(bootstrap, topic(stack), [first])
    await publish_changes(bootstrap, topic(stack), [aborted], abort=True)
    await publish_changes(bootstrap, topic(stack), [last])

    # The aborted event sits between the two committed ones in the same partition: once the
    # last one has arrived, the aborted one would have come before it.
    await eventually(lambda: _async(received_ids(receiver, "committed-only")), until=lambda ids: last["event_id"] in ids)
    assert received_ids(receiver, "committed-only") == [first["event_id"], last["event_id"]]


async def test_rotated_secret_signs_new_deliveries_and_the_old_one_still_verifies(stack, api, receiver):
    created = await webhook_for(api, receiver, "rotated")
    answer = await api.http.post(f"/webhooks/{created['webhook_id']}/rotate-secret")
    assert answer.status_code == 200
    new_secret = answer.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    assert "secret" not in (await api.get(created["webhook_id"]))

    receiver.expect("rotated", new_secret)
    event = change_event(api.workspace, "r1", "churn")
    await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), [event])
    await eventually(lambda: _async(received_ids(receiver, "rotated")), until=lambda ids: ids == [event["event_id"]])
    receiver.expect("rotated", created["secret"])  # a receiver not yet switched over (grace period)
    second = change_event(api.workspace, "r1", "churn", "removed")
    await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), [second])
    await eventually(lambda: _async(received_ids(receiver, "rotated")),
                     until=lambda ids: ids == [event["event_id"], second["event_id"]])
    assert receiver.refused_signatures == 0


async def test_a_cohort_import_reaches_the_webhook_through_every_service(stack, api, receiver, workspace_client):
    client = workspace_client(stack, api.workspace)
    await client.new_key()
    try:
        await webhook_for(api, receiver, "import")
        await client.profiles("track", {"attributes": [{"external_id": f"x{i}"} for i in range(20)]})
        await client.user_id("external_id:x19")
        await client.change("churn", {"user_ids": [f"x{i}" for i in range(20)]})
        await client.change("churn", {"user_ids": ["x0", "x1"], "should_remove": True})
        await eventually(lambda: _async(len(receiver.received["import"])), until=lambda n: n >= 22, timeout=60)
        kinds = collections.Counter((r.event["external_id"], r.event["change"]) for r in receiver.received["import"])
        assert kinds == {**{(f"x{i}", "added"): 1 for i in range(20)}, ("x0", "removed"): 1, ("x1", "removed"): 1}
        by_user = collections.defaultdict(list)
        for r in receiver.received["import"]:
            by_user[r.event["external_id"]].append(r.event["change"])
        assert by_user["x0"] == ["added", "removed"]
    finally:
        await client.close()


@pytest.fixture
def impatient_delivery(kafka_bootstrap: str, redis_url: str, tmp_path):
    """delivery alone, giving up on an event 2 s after its first attempt."""
    test_id = unique("g")
    services = ServiceProcesses.configure(
        {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url, "TOPIC_PREFIX": f"{test_id}.",
         "REDIS_KEY_PREFIX": f"{test_id}:", "TOPIC_PARTITIONS": "3", "DELIVERY_RETRY_BASE_SECONDS": "0.2",
         "DELIVERY_RETRY_MAX_DELAY_SECONDS": "0.5", "DELIVERY_RETRY_MAX_AGE_SECONDS": "2",
         "DELIVERY_BREAKER_COOLDOWN_SECONDS": "0.2"}, tmp_path)
    services.start("delivery")
    services.wait_ready("delivery")
    yield services
    services.stop_all()


async def test_events_failing_past_the_retry_period_are_kept_failed_and_replayable(impatient_delivery, receiver):
    stack = impatient_delivery
    api = DeliveryApi(stack.urls["delivery"], stack.env["ADMIN_TOKEN"], "replays")
    try:
        created = await webhook_for(api, receiver, "down")
        receiver.answer("down", 503)
        before = change_event("replays", "p0", "churn")["occurred_at"]
        events = [change_event("replays", f"p{i % 4}", "churn", ["added", "removed"][(i // 4) % 2]) for i in range(12)]
        await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), events)
        state = await eventually(lambda: api.get(created["webhook_id"]), until=lambda s: s["failed"] == 12, timeout=30)
        assert (state["pending"], state["delivered"], state["last_error"]) == (0, 0, "HTTP 503")
        attempts = (await api.http.get(f"/webhooks/{created['webhook_id']}/attempts")).json()["attempts"]
        assert sum(a["result"] == "failed" for a in attempts) == 12

        receiver.answer("down", 200)
        bad = await api.http.post(f"/webhooks/{created['webhook_id']}/replay", json={"from": "yesterday"})
        assert bad.status_code == 400 and bad.json()["message"].startswith("from")
        started = await api.http.post(f"/webhooks/{created['webhook_id']}/replay", json={"from": before})
        assert started.status_code == 202 and started.json()["replay"]["status"] == "running"
        await eventually(lambda: _async(set(received_ids(receiver, "down"))),
                         until=lambda ids: ids == {e["event_id"] for e in events}, timeout=30)
        assert_per_user_order(receiver.received["down"], events)
        state = await eventually(lambda: api.get(created["webhook_id"]), until=lambda s: s["delivered"] == 12)
        assert (state["failed"], state["pending"], state["replay"]["status"], state["replay"]["queued"]) == (0, 0, "done", 12)
    finally:
        await api.close()


async def test_killed_delivery_loses_nothing_after_restart(impatient_delivery, receiver):
    stack = impatient_delivery
    api = DeliveryApi(stack.urls["delivery"], stack.env["ADMIN_TOKEN"], "kills")
    try:
        await webhook_for(api, receiver, "survivor")
        receiver.answer("survivor", 200, delay=0.05)  # slow enough that the kill lands mid-stream
        events = [change_event("kills", f"k{i % 50}", "churn", ["added", "removed"][(i // 50) % 2]) for i in range(1500)]
        await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), events)
        await eventually(lambda: _async(len(receiver.received["survivor"])), until=lambda n: n >= 100, timeout=30)
        stack.stop("delivery", kill=True)
        assert len(set(received_ids(receiver, "survivor"))) < 1500
        stack.start("delivery")
        stack.wait_ready("delivery")
        await eventually(lambda: _async(set(received_ids(receiver, "survivor"))),
                         until=lambda ids: ids == {e["event_id"] for e in events}, timeout=90)
        assert all(r.event["event_id"] == r.webhook_id for r in receiver.received["survivor"])
        assert_per_user_order(receiver.received["survivor"], events)
    finally:
        await api.close()


async def test_the_cli_operates_webhooks_on_the_running_service(stack, api, receiver):
    import asyncio
    import json

    from cohort_cli.main import app as cli
    from typer.testing import CliRunner

    runner = CliRunner(env={"ADMIN_TOKEN": stack.env["ADMIN_TOKEN"], "COHORT_DELIVERY_URL": stack.urls["delivery"],
                            "COLUMNS": "200"})

    async def cohort(*args: str) -> dict:
        result = await asyncio.to_thread(runner.invoke, cli, ["--json", "webhooks", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    created = await cohort("create", api.workspace, receiver.hook_url("cli"), "--cohort-id", "churn",
                           "--change", "added", "--partner", "mixpanel", "--description", "from the CLI")
    assert created["filter"] == {"partners": ["mixpanel"], "cohort_ids": ["churn"], "changes": ["added"]}
    webhook_id = created["webhook_id"]
    receiver.expect("cli", created["secret"])
    assert [w["webhook_id"] for w in (await cohort("list", api.workspace))["webhooks"]] == [webhook_id]
    assert (await cohort("pause", api.workspace, webhook_id))["status"] == "paused"
    assert (await cohort("resume", api.workspace, webhook_id))["status"] == "active"
    event = change_event(api.workspace, "c1", "churn")
    await publish_changes(stack.env["KAFKA_BOOTSTRAP_SERVERS"], topic(stack), [event])
    await eventually(lambda: _async(received_ids(receiver, "cli")), until=lambda ids: ids == [event["event_id"]])
    shown = await eventually(lambda: cohort("show", api.workspace, webhook_id), until=lambda s: s["delivered"] == 1)
    assert shown["description"] == "from the CLI"
    assert (await cohort("attempts", api.workspace, webhook_id))["attempts"][0]["result"] == "delivered"
    assert (await cohort("rotate-secret", api.workspace, webhook_id))["secret"].startswith("whsec_")
    replay = await cohort("replay", api.workspace, webhook_id, "--from", event["occurred_at"])
    assert replay["replay"]["status"] == "running"
    assert (await cohort("delete", api.workspace, webhook_id))["deleted"] is True
    assert (await api.http.get(f"/webhooks/{webhook_id}")).status_code == 404
