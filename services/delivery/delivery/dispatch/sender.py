"""Sending one webhook's queue while holding its lease: up to `max_in_flight` requests at
once, per user in queue order, each attempt judged and recorded, a circuit breaker in
front. When nothing is left to send now, the sender says when to come back (the due set)
and ends a run; the dispatcher runs it again then. The same sender object serves every run
on this instance, so its breaker and the events it already read survive between runs: a
failing webhook whose events keep coming costs a due-set check, not a re-read of its queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from ..adapters.http_sender import Sender
from ..adapters.queues import RedisDeliveryQueues, Target
from ..adapters.registry import WebhookRegistry
from ..domain.attempts import Attempt, judge
from ..domain.queue import QueuedEvent, next_due, sendable
from ..domain.retry import CircuitBreaker, RetryPolicy
from ..domain.secret_box import SecretBox
from ..domain.signing import Signer, body_of
from ..domain.webhooks import Webhook
from ..metrics import ATTEMPTS, LATENCY
from ..settings import DeliverySettings

log = logging.getLogger(__name__)
DEFINITION_TTL_SECONDS = 0.5  # a pause, rotation or deletion is seen within this
NEAR_SECONDS = 1.0  # a retry due this soon is waited for in the run, not by a new one
BATCH_SECONDS = 0.003
_attempts_counter = lru_cache(maxsize=None)(ATTEMPTS.labels)  # three results: looked up once each


def signer_for(webhook: Webhook, box: SecretBox, now: float) -> Signer:
    secrets = [box.open(webhook.secret, webhook.webhook_id)]
    if webhook.previous_secret and (webhook.previous_secret_until or 0) > now:
        secrets.append(box.open(webhook.previous_secret, webhook.webhook_id))
    return Signer(*secrets)


class WebhookSender:
    def __init__(self, target: Target, *, settings: DeliverySettings, registry: WebhookRegistry,
                 queues: RedisDeliveryQueues, sender: Sender, box: SecretBox, token: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self._settings = settings
        self._registry = registry
        self._queues = queues
        self._sender = sender
        self._box = box
        self._token = token
        self._clock = clock
        self._policy = RetryPolicy(settings.retry_base_seconds, settings.retry_max_delay_seconds,
                                   settings.retry_max_age_seconds)
        self._breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_seconds)
        self._in_flight: dict[str, asyncio.Task[Attempt]] = {}
        self._known: dict[str, QueuedEvent] = {}

    async def run(self) -> bool | float:
        """Send until idle. False if another instance holds the webhook; else True, or the
        time before which running again is pointless (the breaker is open)."""
        lease_ms = int(self._settings.lease_seconds * 1000)
        if not await self._queues.claim(self.target, self._token, lease_ms):
            return False
        try:
            return await self._send_until_idle(lease_ms)
        finally:
            for task in self._in_flight.values():
                task.cancel()  # their events stay queued and go out again (same webhook-id)
            self._in_flight.clear()
            await self._queues.release(self.target, self._token)

    async def _send_until_idle(self, lease_ms: int) -> bool | float:
        renewed_at = self._clock()
        signer_key, signer = None, None
        webhook, read_at = None, 0.0
        while True:
            now = self._clock()
            if webhook is None or now - read_at > DEFINITION_TTL_SECONDS:
                webhook, read_at = await self._registry.get(self.target.workspace_id, self.target.webhook_id), now
                if webhook is None:  # deleted: whatever a fan-out queued after the purge goes too
                    await self._queues.purge(self.target)
                    return True
            if now - renewed_at > self._settings.lease_seconds / 3:
                if not await self._queues.claim(self.target, self._token, lease_ms):
                    return True
                renewed_at = now
            if webhook.status == "paused" and not self._in_flight:
                await self._queues.clear_due(self.target)  # PATCH to active marks it due again
                return True
            if (webhook.secret, webhook.previous_secret) != signer_key:
                signer_key, signer = (webhook.secret, webhook.previous_secret), signer_for(webhook, self._box, now)
            if webhook.status == "active":
                room = self._breaker.allowed_in_flight(now, self._settings.max_in_flight) - len(self._in_flight)
                window = await self._window(room) if room > 0 or not self._in_flight else []
                if not window and not self._in_flight:
                    await self._queues.clear_due(self.target)
                    return True
                for queued in sendable(window, self._in_flight, now, max(0, room)):
                    self._in_flight[queued.event_id] = asyncio.create_task(self._attempt(queued, webhook, signer))
                if not self._in_flight:
                    due = self._next_due(window)
                    if due - self._clock() <= NEAR_SECONDS:
                        await asyncio.sleep(max(0.0, due - self._clock()))
                        continue
                    await self._queues.mark_due(self.target, int(due * 1000))
                    return self._breaker.opens_again_at() if self._breaker.is_open else True
            await self._collect()

    async def _window(self, room: int) -> list[QueuedEvent]:
        """The head of the queue, reading from Redis only the events not seen before: as far
        as the events in flight and twice the free room, or the whole window when that
        holds nothing to send."""
        size = min(self._settings.window, len(self._in_flight) + 2 * max(room, 1))
        ids = await self._queues.head(self.target, size)
        window = await self._known_events(ids)
        if len(ids) == size < self._settings.window and not sendable(window, self._in_flight, self._clock(), 1):
            ids = await self._queues.head(self.target, self._settings.window)
            window = await self._known_events(ids)
        self._known = {queued.event_id: queued for queued in window}
        return window

    async def _known_events(self, ids: list[str]) -> list[QueuedEvent]:
        missing = [event_id for event_id in ids if event_id not in self._known]
        for queued in await self._queues.load(self.target, missing):
            self._known[queued.event_id] = queued
        return [self._known[event_id] for event_id in ids if event_id in self._known]

    def _next_due(self, window: list[QueuedEvent]) -> float:
        due = next_due(window, self._in_flight) or self._clock()
        if self._breaker.is_open:
            due = max(due, self._breaker.opens_again_at())
        return due

    async def _collect(self) -> None:
        """Wait for attempts to end, then record them together: the first to end, and
        whatever else ends in the next few milliseconds, so a busy webhook's results are
        written in batches rather than one round trip each."""
        done, _ = await asyncio.wait(self._in_flight.values(), timeout=self._settings.poll_seconds,
                                     return_when=asyncio.FIRST_COMPLETED)
        if done and len(done) < len(self._in_flight):
            more, _ = await asyncio.wait(self._in_flight.values(), timeout=BATCH_SECONDS,
                                         return_when=asyncio.ALL_COMPLETED)
            done |= more
        attempts = []
        for task in done:
            attempt = task.result()
            del self._in_flight[attempt.event_id]
            self._breaker.record(attempt.result == "delivered", attempt.at)
            if attempt.result == "retrying":
                self._known[attempt.event_id] = attempt.queued
            else:
                self._known.pop(attempt.event_id, None)
            attempts.append(attempt)
        await self._queues.record(self.target, attempts)

    async def _attempt(self, queued: QueuedEvent, webhook: Webhook, signer: Signer) -> Attempt:
        body = body_of(queued.event)
        started = time.monotonic()
        headers = signer.headers(queued.event_id, body, datetime.fromtimestamp(self._clock(), UTC))
        status, error = await self._sender.post(webhook.url, body, headers)
        now = self._clock()
        attempt = judge(queued, status_code=status, error=error, at=now,
                        duration_ms=(time.monotonic() - started) * 1000, policy=self._policy)
        _attempts_counter(attempt.result).inc()
        if attempt.result == "delivered":
            LATENCY.observe(max(0.0, now - datetime.fromisoformat(queued.event["occurred_at"]).timestamp()))
        return attempt
