"""A replay: every event of `membership.changes` since a time that the webhook's filter
matches, queued for it again (an event still pending is not queued twice; a failed one
leaves the failed set). Replayed events keep their order per user among themselves and go
out after what was already pending."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from .adapters.layout import shard_of
from .adapters.queues import RedisDeliveryQueues, Target
from .domain.queue import QueuedEvent
from .domain.webhooks import Webhook
from .fanout import FanOut, is_poison

Reader = Callable[[datetime], AsyncIterator[list[bytes]]]


def make_replayer(read_since: Reader, queues: RedisDeliveryQueues, shards: Callable[[], int]):
    async def replay(webhook: Webhook, since: datetime) -> int:
        target = Target(webhook.workspace_id, webhook.webhook_id, shard_of(webhook.webhook_id, shards()))
        queued = 0
        async for values in read_since(since):
            events = []
            for value in values:
                try:
                    event, raw = FanOut.decode(value)
                except Exception as error:
                    if not is_poison(error):
                        raise
                    continue  # dead-lettered by the live fan-out already
                if (event.workspace_id == webhook.workspace_id and event.occurred_at >= since
                        and webhook.filter.matches(event)):
                    events.append(QueuedEvent(event.event_id, event.user_id, raw))
            if events:
                queued += await queues.enqueue({target: events}, int(time.time() * 1000))
        return queued

    return replay
