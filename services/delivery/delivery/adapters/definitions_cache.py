"""Each workspace's webhooks as the fan-out needs them, cached and re-read only when the
workspace's version counter moved (one pipelined GET per workspace per batch)."""

from __future__ import annotations

from collections.abc import Iterable

from ..domain.webhooks import Webhook
from .layout import Layout
from .registry import from_json


class DefinitionsCache:
    def __init__(self, client, key_prefix: str) -> None:
        self._redis = client
        self._layout = Layout(key_prefix)
        self._cached: dict[str, tuple[bytes | None, list[Webhook]]] = {}

    async def webhooks_of(self, workspaces: Iterable[str]) -> dict[str, list[Webhook]]:
        workspaces = sorted(set(workspaces))
        async with self._redis.pipeline(transaction=False) as pipe:
            for workspace_id in workspaces:
                pipe.get(self._layout.version(workspace_id))
            versions = await pipe.execute()
        stale = [(ws, v) for ws, v in zip(workspaces, versions, strict=True)
                 if ws not in self._cached or self._cached[ws][0] != v]
        if stale:
            async with self._redis.pipeline(transaction=False) as pipe:
                for workspace_id, _ in stale:
                    pipe.hgetall(self._layout.definitions(workspace_id))
                found = await pipe.execute()
            for (workspace_id, version), definitions in zip(stale, found, strict=True):
                self._cached[workspace_id] = (version, [from_json(raw) for raw in definitions.values()])
        return {workspace_id: self._cached[workspace_id][1] for workspace_id in workspaces}
