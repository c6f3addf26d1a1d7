"""Which webhooks this instance sends to: those whose shard is a partition of
`membership.changes` that faust assigned to it (static membership keeps that stable across
restarts), found through the shard's due set. Each webhook's lease makes sure only one
sender runs for it even while a rebalance moves its shard. A webhook's sender object is
kept between its runs (its breaker and the events it read), and forgotten once it has been
idle a while."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cohort_shared.faults import describe, is_infrastructure

from ..adapters.queues import Target
from ..metrics import RETRIES, SENDERS
from .sender import WebhookSender

log = logging.getLogger(__name__)
RETRY_BUSY_SECONDS = 1.0  # another instance holds the webhook: look again after this
FORGET_IDLE_SECONDS = 300.0


class Dispatcher:
    def __init__(self, queues, owned_shards: Callable[[], set[int]], make_sender: Callable[[Target, str], WebhookSender],
                 poll_seconds: float, instance: str, clock: Callable[[], float] = time.time) -> None:
        self._queues = queues
        self._owned_shards = owned_shards
        self._make_sender = make_sender
        self._poll_seconds = poll_seconds
        self._clock = clock
        # The lease holder is the instance ID (static, like its group membership): a restarted
        # instance takes its webhooks back at once instead of waiting for its old leases to lapse.
        self._token = instance
        self._running: dict[str, asyncio.Task[bool | float]] = {}
        self._senders: dict[str, tuple[WebhookSender, float]] = {}
        self._not_before: dict[str, float] = {}
        self.healthy = True
        self.last_loop_at = time.monotonic()

    async def run(self) -> None:
        try:
            while True:
                self.last_loop_at = time.monotonic()
                self._reap()
                try:
                    await self._start_due_senders()
                    self.healthy = True
                except Exception as error:
                    if not is_infrastructure(error):
                        raise
                    self.healthy = False
                    RETRIES.labels("dispatch").inc()
                    log.warning("dispatcher cannot read its due sets: %s; retrying", describe(error))
                    await asyncio.sleep(0.5)
                await asyncio.sleep(self._poll_seconds)
        finally:
            for task in self._running.values():
                task.cancel()

    async def _start_due_senders(self) -> None:
        now = self._clock()
        for shard in sorted(self._owned_shards()):
            for target in await self._queues.due(shard, int(now * 1000)):
                if target.member in self._running or self._not_before.get(target.member, 0) > now:
                    continue
                sender, _ = self._senders.get(target.member) or (self._make_sender(target, self._token), now)
                self._senders[target.member] = (sender, now)
                self._running[target.member] = asyncio.create_task(sender.run())
        SENDERS.set(len(self._running))
        for member, (_, last_run) in list(self._senders.items()):
            if member not in self._running and now - last_run > FORGET_IDLE_SECONDS:
                del self._senders[member]

    def _reap(self) -> None:
        now = self._clock()
        for member, task in list(self._running.items()):
            if not task.done():
                continue
            del self._running[member]
            self._not_before.pop(member, None)
            if task.cancelled():
                continue
            error = task.exception()
            if error is not None:
                self._not_before[member] = now + RETRY_BUSY_SECONDS
                if is_infrastructure(error):
                    RETRIES.labels("send").inc()
                    log.warning("sender of %s stopped on %s; retrying", member, describe(error))
                else:
                    log.error("sender of %s failed", member, exc_info=error)
            elif task.result() is False:
                self._not_before[member] = now + RETRY_BUSY_SECONDS
            elif task.result() is not True:  # its breaker is open until then, whatever comes in
                self._not_before[member] = task.result()
