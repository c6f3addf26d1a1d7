"""Webhook definitions: in Redis (see layout), behind a Protocol with an in-memory twin."""

from __future__ import annotations

from typing import Protocol

import orjson

from ..domain.webhooks import Webhook
from .layout import Layout


class WebhookRegistry(Protocol):
    async def save(self, webhook: Webhook) -> None: ...
    async def get(self, workspace_id: str, webhook_id: str) -> Webhook | None: ...
    async def all_in(self, workspace_id: str) -> list[Webhook]: ...
    async def remove(self, workspace_id: str, webhook_id: str) -> bool: ...


def to_json(webhook: Webhook) -> bytes:
    return orjson.dumps(webhook.model_dump(mode="json"))


def from_json(raw: bytes) -> Webhook:
    return Webhook.model_validate_json(raw)


class RedisWebhookRegistry:
    def __init__(self, client, key_prefix: str) -> None:
        self._redis = client
        self._layout = Layout(key_prefix)

    async def save(self, webhook: Webhook) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._layout.definitions(webhook.workspace_id), webhook.webhook_id, to_json(webhook))
            pipe.incr(self._layout.version(webhook.workspace_id))
            await pipe.execute()

    async def get(self, workspace_id: str, webhook_id: str) -> Webhook | None:
        raw = await self._redis.hget(self._layout.definitions(workspace_id), webhook_id)
        return from_json(raw) if raw else None

    async def all_in(self, workspace_id: str) -> list[Webhook]:
        found = await self._redis.hgetall(self._layout.definitions(workspace_id))
        return [from_json(raw) for raw in found.values()]

    async def remove(self, workspace_id: str, webhook_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._layout.definitions(workspace_id), webhook_id)
            pipe.incr(self._layout.version(workspace_id))
            removed, _ = await pipe.execute()
        return bool(removed)


class InMemoryWebhookRegistry:
    """The same contract in a dict, for unit tests."""

    def __init__(self) -> None:
        self.webhooks: dict[tuple[str, str], Webhook] = {}

    async def save(self, webhook: Webhook) -> None:
        self.webhooks[(webhook.workspace_id, webhook.webhook_id)] = webhook

    async def get(self, workspace_id: str, webhook_id: str) -> Webhook | None:
        return self.webhooks.get((workspace_id, webhook_id))

    async def all_in(self, workspace_id: str) -> list[Webhook]:
        return [w for (ws, _), w in self.webhooks.items() if ws == workspace_id]

    async def remove(self, workspace_id: str, webhook_id: str) -> bool:
        return self.webhooks.pop((workspace_id, webhook_id), None) is not None
