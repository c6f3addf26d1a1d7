"""The stream processor: consume a batch, apply it in Redis (tracked scripts), then publish
its outputs and commit its offsets in one Kafka transaction (read_committed downstream).

What each failure does:
- a record that cannot be decoded: its DLQ, decided by the handler before any effect;
- Kafka or Redis unavailable (down, read-only after a failover, full, busy, loading, a
  record the broker refuses): nothing is committed; the batch is read again after a
  back-off. Never dead-lettered, whatever its effects;
- anything else the handler raises (a bug): the same, and the failing partition is found
  by retrying partitions one at a time, then held back with a growing delay and reported
  (`/readyz`, `stream_partition_stuck`), while the other partitions go on;
- lost ownership (the group coordinator refused our offsets, or Redis our writes, because
  another instance owns the partitions now, e.g. after this one was frozen): the
  transaction is aborted and the consumer rejoins its group;
- clients that cannot go on (our producer fenced by another with the same transactional
  ID, or a fatal client state): they are rebuilt; after `max_restarts` in
  `restart_window_s` the processor is dead and `on_dead` ends the process with a non-zero
  code, so a supervisor restarts it. `/healthz` is 503 from then on.

At assignment, each new partition is first fenced for this consumer (`partitions.py`), then
Redis's progress is compared with Kafka's committed offset (`divergence.py`): a partition
out of step is held back and reported until an operator repairs it; one with a batch
applied but not committed is republished before anything else is applied.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram

from .. import txn_fencing
from ..faults import is_fatal_for_clients, is_fenced, is_infrastructure, redis_is_unavailable
from ..kafka import make_consumer, make_producer
from ..publishing import BatchPublisher, PublishFailed
from ..redis_store import KeySpace
from ..settings import CommonSettings
from .divergence import Divergence, compare
from .outgoing import Outgoing
from .partitions import PartitionLedger
from .scripts import LoadedScript
from .tracking import Tracking

log = logging.getLogger(__name__)
txn_fencing.install()

RECORDS = Counter("stream_records_total", "Input records processed", ["group", "topic"])
DEAD_LETTERS = Counter("stream_dead_letters_total", "Input records sent to a DLQ", ["group", "topic"])
BATCH_SECONDS = Histogram("stream_batch_seconds", "Time to apply and commit one batch", ["group"])
RETRIES = Counter("stream_retries_total", "Batches read again after a failure", ["group", "reason"])
LAG = Gauge("stream_consumer_lag", "Records not yet processed", ["group", "topic", "partition"])
LOOP_ALIVE = Gauge("stream_loop_alive", "1 while the processing loop runs", ["group"])
DIVERGED = Gauge("stream_divergence", "1 while a partition's Redis and Kafka positions disagree",
                 ["group", "topic", "partition"])
STUCK = Gauge("stream_partition_stuck", "1 while a partition is held back after repeated failures",
              ["group", "topic", "partition"])

def _spoils_producer(exc: BaseException) -> bool:
    """The producer's idempotence state no longer matches the broker's."""
    names = {"OutOfOrderSequenceNumber", "UnknownProducerIdError", "DuplicateSequenceNumber"}
    chain = [exc, exc.__cause__, exc.__context__]
    return any(type(item).__name__ in names for item in chain if item is not None)


BatchHandler = Callable[[TopicPartition, list[ConsumerRecord], Tracking], Awaitable[list[Outgoing]]]
"""Applies one partition's records and returns what to publish, in order. Records it cannot
decode go out as DLQ `Outgoing`s (see `outgoing.dead_letter`); anything it raises means
"not applied, not committed"."""

Batches = dict[TopicPartition, list[ConsumerRecord]]


class _NotCommitted(Exception):
    """A batch was not committed: where to resume reading each partition, and whether the
    cause was the infrastructure."""

    def __init__(self, resume_at: dict[TopicPartition, int], cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.resume_at = resume_at
        # A send Kafka refused is not the record's fault either: the producer is renewed.
        self.infrastructure = is_infrastructure(cause) or isinstance(cause, PublishFailed)
        self.__cause__ = cause


class _OwnershipLost(Exception):
    """Another consumer owns our partitions now; nothing to read again here."""


class _Rebalance(ConsumerRebalanceListener):
    """Lets a rebalance take partitions away only between transactions, so the next owner
    never starts on a partition whose batch is still being committed here."""

    def __init__(self, processor: TransactionalProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._processor._lock:
            self._processor._forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        # aiokafka fetches for the new assignment before this runs and swallows what it
        # raises: new partitions are checked in the processing loop (`_take_ownership`).
        self._processor.joined = True
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class TransactionalProcessor:
    """Consume `topics` in `group_id` and apply each batch with `handler` exactly once.

    Static group membership (`instance_id`) lets a restarted instance take its partitions
    back without a rebalance; the transactional ID is derived from it, so a restarted
    instance fences its own earlier incarnation.
    """

    def __init__(
        self,
        settings: CommonSettings,
        client: aioredis.Redis,
        *,
        service: str,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        instance_id: str | None = None,
        max_records: int = 2000,
        session_timeout_ms: int = 15000,
        on_dead: Callable[[str], None] | None = None,
        max_restarts: int = 5,
        restart_window_s: float = 300.0,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.service = service
        self.group_id = group_id
        self.topics = list(topics)
        self.handler = handler
        self.instance_id = instance_id or socket.gethostname()
        self.max_records = max_records
        self.session_timeout_ms = session_timeout_ms
        self.on_dead = on_dead
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        keys = KeySpace(settings.redis_key_prefix, service)
        self.ledger = PartitionLedger(client, keys, group_id)
        self.tracking = Tracking(keys, group_id, self.ledger.fence_key)
        self.state = "stopped"  # starting | running | retrying | restarting | dead | stopped
        self.dead_reason: str | None = None
        self.joined = False
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._reset_partitions()

    def _reset_partitions(self) -> None:
        self._recovering: dict[TopicPartition, int] = {}  # in flight when assigned: up to which offset
        self._diverged: dict[TopicPartition, Divergence] = {}
        self._suspects: set[TopicPartition] = set()  # in a batch that failed for no known reason
        self._stuck: dict[TopicPartition, tuple[float, float]] = {}  # failed alone: (retry at, delay)
        self._repairs_checked_at = 0.0
        self._positions: dict[TopicPartition, int] = {}  # next offset to process, for the lag
        self.tracking.tokens.clear()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self.running = True
        self.state = "starting"
        await self._start_clients()
        self._task = asyncio.create_task(self._supervise(), name=f"{self.group_id}-loop")

    async def stop(self) -> None:
        self.running = False
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        await self._stop_clients()
        if self.state != "dead":
            self.state = "stopped"
        LOOP_ALIVE.labels(self.group_id).set(0)

    @property
    def healthy(self) -> bool:
        """Alive: the loop runs, or retries, or rebuilds its clients within its budget."""
        return self.running and self.state != "dead" and self._task is not None and not self._task.done()

    @property
    def ready(self) -> bool:
        """Doing its work: in its group, holding its partitions, none of them out of step or stuck."""
        return self.healthy and self.joined and self.state == "running" and not self._diverged and not self._stuck

    def status(self) -> dict:
        return {
            "state": self.state,
            "joined": self.joined,
            "assigned": len(self.consumer.assignment()) if self.consumer else 0,
            "diverged": [d.as_json() for d in self._diverged.values()],
            "stuck": sorted(f"{tp.topic}[{tp.partition}]" for tp in self._stuck),
            "dead_reason": self.dead_reason,
        }

    def _make_producer(self) -> AIOKafkaProducer:
        return make_producer(
            self.settings,
            transactional_id=f"{self.group_id}.{self.instance_id}",
            transaction_timeout_ms=30000,
            # A transaction begun right after the previous commit meets CONCURRENT_TRANSACTIONS
            # until that commit's markers are written (a few ms); aiokafka waits retry_backoff_ms
            # (100 by default) before asking again, which was the latency tail.
            retry_backoff_ms=10,
        )

    async def _start_clients(self) -> None:
        member = f"{self.group_id}.{self.instance_id}"
        self.producer = self._make_producer()
        self._producer_spoilt = False
        self.consumer = make_consumer(
            self.settings,
            group_id=self.group_id,
            group_instance_id=member,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.session_timeout_ms // 5),
        )
        await self.producer.start()
        await self.consumer.start()
        consumer = self.consumer
        txn_fencing.register_group(self.group_id, lambda: txn_fencing.GroupMetadata(
            consumer._coordinator.generation, consumer._coordinator.member_id, member))
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))

    async def _stop_clients(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                try:
                    await client.stop()
                except Exception as exc:  # noqa: BLE001 - stopping a broken client
                    log.warning("stopping a client failed: %s", type(exc).__name__)
        self.consumer = self.producer = None
        self.joined = False

    async def _supervise(self) -> None:
        restarts: deque[float] = deque()
        while self.running:
            LOOP_ALIVE.labels(self.group_id).set(1)
            try:
                await self._consume()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every way the loop can end is handled here
                now = time.monotonic()
                restarts.append(now)
                while restarts and restarts[0] < now - self.restart_window_s:
                    restarts.popleft()
                if len(restarts) > self.max_restarts:
                    self._die(f"{len(restarts)} restarts in {self.restart_window_s:.0f} s, last: {type(exc).__name__}")
                    return
                self.state = "restarting"
                log.exception("processing loop of %s ended (%s); rebuilding its clients (%d of %d)",
                              self.group_id, type(exc).__name__, len(restarts), self.max_restarts)
                await self._stop_clients()
                self._reset_partitions()
                await asyncio.sleep(min(30.0, 0.5 * 2 ** len(restarts)))
                try:
                    await self._start_clients()
                except Exception:  # noqa: BLE001 - counted as the next restart
                    log.exception("clients of %s could not start", self.group_id)

    def _die(self, reason: str) -> None:
        self.state = "dead"
        self.dead_reason = reason
        LOOP_ALIVE.labels(self.group_id).set(0)
        log.critical("processing loop of %s is dead: %s", self.group_id, reason)
        if self.on_dead is not None:
            self.on_dead(reason)

    # ---------------------------------------------------------------- the loop

    async def _consume(self) -> None:
        backoff = 0.1
        lag_at = 0.0
        while self.running:
            self._hold_back()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
            if time.monotonic() > lag_at:
                self._report_lag()
                lag_at = time.monotonic() + 2.0
            try:
                # Under the lock a rebalance cannot revoke partitions half-way through: what
                # is assigned now stays ours until this iteration is over.
                async with self._lock:
                    assigned = self.consumer.assignment()
                    batches = {tp: records for tp, records in batches.items() if tp in assigned}
                    await self._take_ownership()
                    await self._apply_repairs()
                    batches = self._ready(batches)
                    if batches:
                        await self._process(batches)
                if batches or self.state != "retrying":
                    self.state = "running"
                    backoff = 0.1
            except _OwnershipLost:
                self.state = "retrying"
                RETRIES.labels(self.group_id, "ownership").inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except _NotCommitted as failure:
                self.state = "retrying"
                cause = failure.__cause__
                reason = "infrastructure" if failure.infrastructure else "handler"
                RETRIES.labels(self.group_id, reason).inc()
                log.warning("batch not committed (%s: %s); reading it again in %.1f s",
                            type(cause).__name__, cause, backoff, exc_info=not failure.infrastructure)
                if redis_is_unavailable(cause) and "NOSCRIPT" in str(cause):
                    LoadedScript.forget_loaded()
                if not failure.infrastructure:
                    self._suspect(failure.resume_at)
                self._seek(failure.resume_at)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _report_lag(self) -> None:
        for tp in self.consumer.assignment():
            highwater, position = self.consumer.highwater(tp), self._positions.get(tp)
            if highwater is not None and position is not None:
                LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(0, highwater - position))

    def _seek(self, resume_at: dict[TopicPartition, int]) -> None:
        """Read partitions again from `resume_at`; a partition no longer assigned is left
        alone (its next owner reads it from the committed offset)."""
        assigned = self.consumer.assignment()
        for tp, offset in resume_at.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)

    def _forget(self, revoked) -> None:
        for tp in revoked:
            self.tracking.tokens.pop(tp, None)
            self._recovering.pop(tp, None)
            self._suspects.discard(tp)
            if self._diverged.pop(tp, None) is not None:
                DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(0)
            if self._stuck.pop(tp, None) is not None:
                STUCK.labels(self.group_id, tp.topic, str(tp.partition)).set(0)

    # ---------------------------------------------------------------- ownership

    async def _take_ownership(self) -> None:
        """Fence partitions new to this consumer, then compare Redis's progress on each with
        Kafka's committed offset (`divergence.compare`). The fence comes first: a zombie that
        still writes after it is refused, and one that wrote before it left its in-flight
        mark, which the read below sees. A failure here only delays: the partitions stay
        new and are checked again on the next round."""
        fresh = sorted(self.consumer.assignment() - self.tracking.tokens.keys())
        if not fresh:
            return
        coordinator = self.consumer._coordinator
        token = f"{coordinator.generation}:{coordinator.member_id}"
        await self.ledger.claim(fresh, token)
        marks = await self.ledger.read(fresh)
        committed = {tp: meta.offset for tp, meta in (await coordinator.fetch_committed_offsets(fresh)).items()
                     if meta.offset >= 0}
        for tp in fresh:
            mark, offset = marks[tp], committed.get(tp)
            verdict = compare(mark.applied, offset, mark.in_flight)
            if verdict == "republish":
                self._recovering[tp] = mark.in_flight
            elif verdict in ("redis_behind", "kafka_behind"):
                await self._report(Divergence.found(self.group_id, tp, verdict, mark.applied, offset))
            if offset is not None:
                self._positions[tp] = offset
            self.tracking.tokens[tp] = token

    async def _report(self, divergence: Divergence) -> None:
        tp = divergence.tp
        self._diverged[tp] = divergence
        DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(1)
        log.error("Kafka and Redis out of step, not consuming %s until repaired: %s",
                  f"{tp.topic}[{tp.partition}]", divergence.describe())
        await self.ledger.report_divergence(divergence)

    async def _apply_repairs(self) -> None:
        """Carry out the repairs an operator asked for on partitions held back here."""
        if not self._diverged or time.monotonic() < self._repairs_checked_at + 1.0:
            return
        self._repairs_checked_at = time.monotonic()
        for tp, action in (await self.ledger.pending_repairs(self._diverged)).items():
            divergence = self._diverged.pop(tp)
            if action == "reapply":
                if divergence.applied is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, divergence.applied + 1)
            else:
                dropped = await self.ledger.forget_partition(tp, self.tracking.patterns(tp))
                committed = divergence.committed
                if committed is None:
                    await self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)
                log.info("%s: forgot %d tracking keys", f"{tp.topic}[{tp.partition}]", dropped)
            await self.ledger.repaired(tp)
            DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(0)
            log.warning("repaired %s by %s: %s", f"{tp.topic}[{tp.partition}]", action, divergence.describe())

    # ---------------------------------------------------------------- what is processed now

    def _hold_back(self) -> None:
        """Pause what must wait: out-of-step and stuck partitions, and while partitions left
        in flight are republished, every other one (a user's events must not be published
        after events of records applied after them)."""
        assigned = self.consumer.assignment()
        now = time.monotonic()
        waiting = set(self._diverged) | {tp for tp, (at, _) in self._stuck.items() if at > now}
        for tp in list(self._recovering):
            if tp not in assigned:
                del self._recovering[tp]
        if self._recovering:
            waiting |= assigned - self._recovering.keys()
        waiting &= assigned
        paused = self.consumer.paused()
        if waiting - paused:
            self.consumer.pause(*(waiting - paused))
        if paused - waiting:
            self.consumer.resume(*(paused - waiting))

    def _ready(self, batches: Batches) -> Batches:
        """The records of `batches` to apply now; the others are read again later."""
        now = time.monotonic()
        isolate = next((tp for tp in sorted(self._suspects) if tp in batches), None)
        kept: Batches = {}
        for tp, records in batches.items():
            held = (tp in self._diverged or (tp in self._stuck and self._stuck[tp][0] > now)
                    or (isolate is not None and tp != isolate))
            if self._recovering:
                last = self._recovering.get(tp)
                records = [] if last is None else [r for r in records if r.offset <= last]
            if held:
                records = []
            if len(records) < len(batches[tp]):
                self._seek({tp: batches[tp][len(records)].offset})
            if records:
                kept[tp] = records
        return kept

    def _suspect(self, resume_at: dict[TopicPartition, int]) -> None:
        """A batch failed for no known reason: retry its partitions one at a time; one that
        fails alone is held back with a growing delay (never dead-lettered: its records may
        have had effects)."""
        if len(resume_at) > 1:
            self._suspects |= resume_at.keys()
            return
        (tp,) = resume_at
        self._suspects.discard(tp)
        _, delay = self._stuck.get(tp, (0.0, 0.5))
        delay = min(delay * 2, 60.0)
        self._stuck[tp] = (time.monotonic() + delay, delay)
        STUCK.labels(self.group_id, tp.topic, str(tp.partition)).set(1)
        log.error("%s fails on its own; held back %.0f s before the next try",
                  f"{tp.topic}[{tp.partition}]", delay)

    # ---------------------------------------------------------------- apply, publish, commit

    async def _process(self, batches: Batches) -> None:
        """Apply `batches` and commit them in one transaction, or raise `_NotCommitted`."""
        with BATCH_SECONDS.labels(self.group_id).time():
            try:
                if self._producer_spoilt:
                    await self._renew_producer()
                await self.ledger.mark_in_flight({tp: records[-1].offset for tp, records in batches.items()})
                await self._transaction(batches)
            except Exception as exc:
                if isinstance(exc, PublishFailed) or _spoils_producer(exc):
                    self._producer_spoilt = True
                if is_fenced(exc):
                    self._lost_ownership(exc)
                    raise _OwnershipLost() from exc
                if is_fatal_for_clients(exc):
                    raise
                raise _NotCommitted({tp: records[0].offset for tp, records in batches.items()}, exc) from exc
        # Committed: nothing below may send these records round again.
        for tp, records in batches.items():
            self._positions[tp] = records[-1].offset + 1
            self._suspects.discard(tp)
            if self._recovering.get(tp, -1) <= records[-1].offset:
                self._recovering.pop(tp, None)
            if self._stuck.pop(tp, None) is not None:
                STUCK.labels(self.group_id, tp.topic, str(tp.partition)).set(0)
        await self.ledger.clear_in_flight(batches)

    async def _renew_producer(self) -> None:
        """A new producer under the same transactional ID: its initialisation fences the old
        one and starts from fresh sequence numbers."""
        old, self.producer = self.producer, None
        try:
            await old.stop()
        except Exception as exc:  # noqa: BLE001 - it is being replaced because it is broken
            log.info("stopping the spoilt producer: %s", type(exc).__name__)
        self.producer = self._make_producer()
        await self.producer.start()
        self._producer_spoilt = False
        log.info("producer of %s renewed after a failed send", self.group_id)

    def _lost_ownership(self, exc: BaseException) -> None:
        """Another consumer owns (some of) our partitions now: forget them all and rejoin;
        the rebalance hands back what is still ours."""
        log.warning("%s lost ownership of its partitions (%s); rejoining the group", self.group_id, exc)
        self._forget(list(self.tracking.tokens))
        self.consumer._coordinator.request_rejoin()

    async def _transaction(self, batches: Batches) -> None:
        self.tracking.begin()
        async with self.producer.transaction():
            offsets = {}
            publisher = BatchPublisher(self.producer)
            for tp, records in batches.items():
                for out in await self.handler(tp, records, self.tracking):
                    if out.topic.endswith(".dlq"):
                        DEAD_LETTERS.labels(self.group_id, tp.topic).inc()
                    await publisher.add(out.topic, out.key, out.value, out.headers)
                offsets[tp] = records[-1].offset + 1
            # After every effect, before the commit: if this mark survives a crash, so do they.
            await self.ledger.record_applied({tp: offset - 1 for tp, offset in offsets.items()})
            await publisher.flush()
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
        for tp, records in batches.items():
            RECORDS.labels(self.group_id, tp.topic).inc(len(records))
        await self.tracking.forget_published(self.redis)
