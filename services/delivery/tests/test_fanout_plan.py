"""Which webhooks an event is queued for, and in what order (pure part of the fan-out)."""

from __future__ import annotations

from datetime import UTC, datetime

from cohort_shared.schemas import MembershipChanged
from delivery.adapters.layout import shard_of
from delivery.domain.filters import WebhookFilter
from delivery.domain.webhooks import Webhook
from delivery.fanout import plan

CREATED = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def hook(webhook_id: str, workspace: str = "ws", **filters) -> Webhook:
    return Webhook(webhook_id=webhook_id, workspace_id=workspace, url="https://example.com/h",
                   filter=WebhookFilter(**filters), created_at=CREATED, secret="sealed")


def change(event_id: str, user: str, cohort: str = "churn", at: str = "2026-11-29T11:00:00+00:00",
           workspace: str = "ws") -> tuple[MembershipChanged, dict]:
    raw = {"event_id": event_id, "workspace_id": workspace, "partner": "mixpanel", "cohort_id": cohort,
           "user_id": user, "external_id": None, "change": "added", "cause": "cohort_import", "occurred_at": at}
    return MembershipChanged.model_validate(raw), raw


def test_each_event_is_queued_for_the_matching_webhooks_of_its_workspace_in_order():
    events = [change("e1", "u1"), change("e2", "u2", cohort="power"), change("e3", "u1"),
              change("e4", "u1", workspace="other"), change("e0", "u3", at="2026-11-29T09:00:00+00:00")]
    batches = plan(events, {"ws": [hook("all"), hook("churn", cohort_ids=["churn"])], "other": []}, shards=12)
    queued = {target.webhook_id: [e.event_id for e in events] for target, events in batches.items()}
    # e0 happened before the webhooks existed (a replay brings such events); e4 is another workspace's.
    assert queued == {"all": ["e1", "e2", "e3"], "churn": ["e1", "e3"]}
    assert {t.shard for t in batches} == {shard_of("all", 12), shard_of("churn", 12)}
    assert next(iter(batches.values()))[0].event == events[0][1]
