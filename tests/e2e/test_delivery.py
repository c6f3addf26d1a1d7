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
