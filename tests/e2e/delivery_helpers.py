"""Helpers of the delivery end-to-end tests: change events published as segment-store
publishes them (transactional, keyed by user), and the operator API of delivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaProducer


def change_event(workspace: str, user: str, cohort: str, change: str = "added", partner: str = "mixpanel") -> dict:
    return {"event_id": uuid.uuid4().hex, "workspace_id": workspace, "partner": partner, "cohort_id": cohort,
            "user_id": user, "external_id": f"ext-{user}", "change": change, "cause": "cohort_import",
            "occurred_at": datetime.now(UTC).isoformat()}


async def publish_changes(bootstrap: str, topic: str, events: list[dict], *, abort: bool = False) -> None:
    """Publish `events` in one Kafka transaction (aborted if `abort`), keyed by user."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"test-{uuid.uuid4().hex}")
    await producer.start()
    try:
        await producer.begin_transaction()
        for event in events:
            await producer.send(topic, orjson.dumps(event), key=event["user_id"].encode())
        if abort:
            await producer.abort_transaction()
        else:
            await producer.commit_transaction()
    finally:
        await producer.stop()


class DeliveryApi:
    def __init__(self, base_url: str, token: str, workspace: str) -> None:
        self.http = httpx.AsyncClient(base_url=f"{base_url}/workspaces/{workspace}", timeout=30,
                                      headers={"Authorization": f"Bearer {token}"})

    async def create(self, url: str, **body) -> dict:
        answer = await self.http.post("/webhooks", json={"url": url, **body})
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def get(self, webhook_id: str) -> dict:
        answer = await self.http.get(f"/webhooks/{webhook_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def close(self) -> None:
        await self.http.aclose()
