"""Webhook delivery under the faults: one webhook for every event of the run's workspace,
pointed at a receiver in this process that verifies each signature with the
`standardwebhooks` package; at the end every event of `membership.changes` must have
arrived, per user in topic order."""

from __future__ import annotations

import asyncio
import time

from cohort_shared.webhook_receiver import Receiver

from .api import SystemApi, _expect
from .checks import DeliveryCheck, check_deliveries

HOOK = "chaos"


class WebhookWatch:
    def __init__(self, api: SystemApi) -> None:
        self.api = api
        self.receiver = Receiver()
        self.webhook_id = ""

    async def start(self) -> None:
        await self.receiver.start()
        outcome = await self.api.client.request(
            "POST", self.api.fleet.urls("delivery"), f"/workspaces/{self.api.ws}/webhooks",
            json={"url": self.receiver.hook_url(HOOK), "description": "chaos receiver"}, headers=self.api.admin)
        _expect(outcome, 201)
        created = outcome.response.json()
        self.webhook_id = created["webhook_id"]
        self.receiver.expect(HOOK, created["secret"])

    def received(self) -> list[tuple[str, dict]]:
        return [(r.webhook_id, r.event) for r in self.receiver.received[HOOK]]

    async def state(self) -> dict | None:
        return await self.api._get("delivery", f"/webhooks/{self.webhook_id}")

    async def check(self, events: list[dict], timeout: float) -> tuple[DeliveryCheck, dict | None]:
        """Wait (up to `timeout`) until every event has arrived, then compare."""
        wanted = {e["event_id"] for e in events}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if wanted <= {webhook_id for webhook_id, _ in self.received()}:
                break
            await asyncio.sleep(0.5)
        return check_deliveries(events, self.received()), await self.state()

    async def stop(self) -> None:
        await self.receiver.stop()
