"""What delivery's operator API does, between parsing (entrypoints) and the world
(adapters): webhooks created, listed, paused and resumed, secrets rotated, attempts shown,
events replayed, webhooks deleted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cohort_shared.paging import check_limit, page
from cohort_shared.schemas import utc_now

from .adapters.layout import shard_of
from .adapters.queues import Counts, Target
from .adapters.registry import WebhookRegistry
from .domain.errors import InvalidRequest, NotFound
from .domain.secret_box import SecretBox
from .domain.signing import new_secret
from .domain.webhooks import (
    CreateWebhookBody,
    ReplayBody,
    UpdateWebhookBody,
    Webhook,
    WebhookFilter,
    check_workspace,
    new_webhook_id,
    parse,
)
from .settings import DeliverySettings

log = logging.getLogger(__name__)
Replayer = Callable[[Webhook, datetime], Awaitable[int]]


@dataclass
class WebhookService:
    settings: DeliverySettings
    registry: WebhookRegistry
    queues: Any  # RedisDeliveryQueues, or its in-memory twin in unit tests
    box: SecretBox
    check_destination: Callable[[str, bool], Awaitable[None]]
    replayer: Replayer | None = None
    shards: Callable[[], int] = lambda: 1
    clock: Callable[[], datetime] = utc_now
    _replays: set[asyncio.Task] = field(default_factory=set)

    async def create(self, workspace_id: str, body: dict) -> tuple[Webhook, str]:
        """The new webhook and its secret in clear (shown this once)."""
        check_workspace(workspace_id)
        request: CreateWebhookBody = parse(CreateWebhookBody, body)
        await self.check_destination(request.url, self.settings.allow_private)
        webhook_id, secret = new_webhook_id(), new_secret()
        webhook = Webhook(webhook_id=webhook_id, workspace_id=workspace_id, url=request.url,
                          description=request.description, filter=request.filter or WebhookFilter(),
                          created_at=self.clock(), secret=self.box.seal(secret, webhook_id))
        await self.registry.save(webhook)
        return webhook, secret

    async def find(self, workspace_id: str, webhook_id: str) -> Webhook:
        webhook = await self.registry.get(check_workspace(workspace_id), webhook_id)
        if webhook is None:
            raise NotFound("webhook_id not found in this workspace")
        return webhook

    async def list(self, workspace_id: str, cursor: str | None, limit: int | None) -> tuple[list[Webhook], str | None]:
        webhooks = await self.registry.all_in(check_workspace(workspace_id))
        return page(webhooks, lambda w: f"{w.created_at.isoformat()}|{w.webhook_id}", f"webhooks:{workspace_id}",
                    cursor, limit)

    async def counts(self, webhook: Webhook) -> Counts:
        return await self.queues.counts(webhook.workspace_id, webhook.webhook_id)

    async def replay_state(self, webhook: Webhook) -> dict | None:
        return await self.queues.replay_state(webhook.workspace_id, webhook.webhook_id)

    async def update(self, workspace_id: str, webhook_id: str, body: dict) -> Webhook:
        request: UpdateWebhookBody = parse(UpdateWebhookBody, body)
        webhook = (await self.find(workspace_id, webhook_id)).model_copy(update={"status": request.status})
        await self.registry.save(webhook)
        if webhook.status == "active":  # its backlog goes out now
            await self.queues.mark_due(self._target(webhook), 0)
        return webhook

    async def rotate_secret(self, workspace_id: str, webhook_id: str) -> tuple[Webhook, str]:
        """A new secret (in clear, once); the old one still signs for the grace period."""
        webhook = await self.find(workspace_id, webhook_id)
        secret = new_secret()
        webhook = webhook.model_copy(update={
            "secret": self.box.seal(secret, webhook_id), "previous_secret": webhook.secret,
            "previous_secret_until": time.time() + self.settings.secret_rotation_grace_seconds})
        await self.registry.save(webhook)
        return webhook, secret

    async def attempts(self, workspace_id: str, webhook_id: str, limit: int | None) -> list[dict]:
        webhook = await self.find(workspace_id, webhook_id)
        return await self.queues.attempts(webhook.workspace_id, webhook.webhook_id, check_limit(limit))

    async def replay(self, workspace_id: str, webhook_id: str, body: dict) -> dict:
        """Queue again every matching event since `from`, in the background; its progress is
        shown on the webhook (`replay`)."""
        request: ReplayBody = parse(ReplayBody, body)
        webhook = await self.find(workspace_id, webhook_id)
        if request.from_ > self.clock():
            raise InvalidRequest("from must not be in the future")
        state = {"from": request.from_.astimezone(UTC).isoformat(), "status": "running", "queued": 0,
                 "started_at": self.clock().isoformat()}
        await self.queues.set_replay(workspace_id, webhook_id, state)
        if self.replayer is not None:
            task = asyncio.create_task(self._run_replay(webhook, request.from_, state))
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)
        return state

    async def _run_replay(self, webhook: Webhook, since: datetime, state: dict) -> None:
        try:
            state["queued"] = await self.replayer(webhook, since)
            state["status"] = "done"
        except Exception as error:  # noqa: BLE001 - reported on the webhook, not raised into the void
            log.warning("replay of %s stopped: %s", webhook.webhook_id, type(error).__name__)
            state["status"] = "failed"
        state["finished_at"] = self.clock().isoformat()
        try:
            await self.queues.set_replay(webhook.workspace_id, webhook.webhook_id, state)
        except Exception as error:  # noqa: BLE001
            log.warning("replay state of %s not saved: %s", webhook.webhook_id, type(error).__name__)

    async def delete(self, workspace_id: str, webhook_id: str) -> None:
        webhook = await self.find(workspace_id, webhook_id)
        await self.registry.remove(workspace_id, webhook_id)
        await self.queues.purge(self._target(webhook))

    def _target(self, webhook: Webhook) -> Target:
        return Target(webhook.workspace_id, webhook.webhook_id, shard_of(webhook.webhook_id, self.shards()))
