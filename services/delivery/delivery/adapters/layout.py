"""Where delivery keeps its state in Redis (every key behind REDIS_KEY_PREFIX; a workspace's
keys carry it as the hash tag, so one script touches one Redis Cluster slot):

- `delivery:{ws}:webhooks` hash: webhook_id → the definition as JSON (secrets sealed)
- `delivery:{ws}:webhooks:version` counter: bumped on every change, so the fan-out can keep
  a workspace's definitions cached and re-read them only when they changed
- per webhook, `delivery:{ws}:wh:<id>:…`: `queue` (zset: sequence → event_id), `entries`
  (hash: event_id → the event and its attempts), `seq`, `stats` (hash: delivered,
  last_error, last_error_at), `attempts` (list, newest first, capped), `failed` (zset:
  failed-at → event_id) with `failed-entries`, `lease` (which instance sends), `replay`
- `delivery:due:<shard>` zset: `<ws>/<webhook_id>` → when it next needs a sender (epoch ms);
  the shard is a partition number of `membership.changes`, so the instance that consumes
  that partition dispatches it
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from cohort_shared.redis_store import KeySpace

SERVICE = "delivery"


def shard_of(webhook_id: str, shards: int) -> int:
    """The dispatch shard of a webhook: stable for a given partition count."""
    return zlib.crc32(webhook_id.encode()) % shards


@dataclass(frozen=True)
class WebhookKeys:
    """The keys of one webhook's queue and history."""

    base: str

    def _key(self, name: str) -> str:
        return f"{self.base}:{name}"

    @property
    def queue(self) -> str:
        return self._key("queue")

    @property
    def entries(self) -> str:
        return self._key("entries")

    @property
    def seq(self) -> str:
        return self._key("seq")

    @property
    def stats(self) -> str:
        return self._key("stats")

    @property
    def attempts(self) -> str:
        return self._key("attempts")

    @property
    def failed(self) -> str:
        return self._key("failed")

    @property
    def failed_entries(self) -> str:
        return self._key("failed-entries")

    @property
    def lease(self) -> str:
        return self._key("lease")

    @property
    def replay(self) -> str:
        return self._key("replay")

    def all(self) -> list[str]:
        return [self.queue, self.entries, self.seq, self.stats, self.attempts, self.failed, self.failed_entries, self.lease, self.replay]


@dataclass(frozen=True)
class Layout:
    prefix: str

    @property
    def space(self) -> KeySpace:
        return KeySpace(self.prefix, SERVICE)

    def definitions(self, workspace_id: str) -> str:
        return self.space.workspace(workspace_id, "webhooks")

    def version(self, workspace_id: str) -> str:
        return self.space.workspace(workspace_id, "webhooks", "version")

    def webhook(self, workspace_id: str, webhook_id: str) -> WebhookKeys:
        return WebhookKeys(self.space.workspace(workspace_id, "wh", webhook_id))

    def due(self, shard: int) -> str:
        return self.space.service_wide("due", str(shard))
