"""From `membership.changes` to webhook queues: each event goes into the queue of every
webhook of its workspace whose filter matches and that existed when the change happened
(earlier events reach a webhook by replay). Events are queued in the order read, which per
user is the order of the topic; the offsets are committed by faust after the batch is
queued (at least once: an event read again is not queued twice while still pending)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import orjson
from cohort_shared.faults import describe, is_infrastructure
from cohort_shared.schemas import MembershipChanged
from pydantic import ValidationError

from .adapters.definitions_cache import DefinitionsCache
from .adapters.layout import shard_of
from .adapters.queues import RedisDeliveryQueues, Target
from .domain.queue import QueuedEvent
from .domain.webhooks import Webhook
from .metrics import CONSUMED, FANNED_OUT, RETRIES

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 5.0


def matching(webhooks: Sequence[Webhook], event: MembershipChanged) -> list[Webhook]:
    return [w for w in webhooks if w.filter.matches(event) and event.occurred_at >= w.created_at]


def plan(events: Sequence[tuple[MembershipChanged, dict]], webhooks_by_workspace: dict[str, list[Webhook]],
         shards: int) -> dict[Target, list[QueuedEvent]]:
    """Each matching webhook's new queue entries, in the order of `events`."""
    batches: dict[Target, list[QueuedEvent]] = defaultdict(list)
    for event, raw in events:
        for webhook in matching(webhooks_by_workspace.get(event.workspace_id, ()), event):
            target = Target(event.workspace_id, webhook.webhook_id, shard_of(webhook.webhook_id, shards))
            batches[target].append(QueuedEvent(event.event_id, event.user_id, raw))
    return batches


class FanOut:
    def __init__(self, definitions: DefinitionsCache, queues: RedisDeliveryQueues, shards: Callable[[], int],
                 clock: Callable[[], float] = time.time) -> None:
        self._definitions = definitions
        self._queues = queues
        self._shards = shards
        self._clock = clock
        self.retrying = False

    @staticmethod
    def decode(value: bytes) -> tuple[MembershipChanged, dict]:
        """The event, validated, and its JSON as published (what receivers get as `data`)."""
        raw = orjson.loads(value)
        return MembershipChanged.model_validate(raw), raw

    async def queue_events(self, events: Sequence[tuple[MembershipChanged, dict]]) -> None:
        """Queue a batch for its webhooks; Redis failing is waited out (the batch is not
        acknowledged before), never skipped."""
        CONSUMED.inc(len(events))
        backoff = 0.1
        while True:
            try:
                webhooks = await self._definitions.webhooks_of(event.workspace_id for event, _ in events)
                batches = plan(events, webhooks, self._shards())
                FANNED_OUT.inc(await self._queues.enqueue(batches, int(self._clock() * 1000)))
                self.retrying = False
                return
            except Exception as error:
                if not is_infrastructure(error):
                    raise
                self.retrying = True
                RETRIES.labels("fanout").inc()
                log.warning("cannot queue %d events: %s; retrying in %.1f s", len(events), describe(error), backoff)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
                await self._reload_scripts()

    async def _reload_scripts(self) -> None:
        try:
            await self._queues.prepare()
        except Exception as error:  # noqa: BLE001 - still down: the next try says so
            log.debug("scripts not loaded yet: %s", describe(error))


def is_poison(error: Exception) -> bool:
    return isinstance(error, ValidationError | orjson.JSONDecodeError | UnicodeDecodeError | TypeError)
