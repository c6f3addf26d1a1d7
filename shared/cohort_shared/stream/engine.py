"""The stream processor every stream service runs: consume a batch, let the service's
handlers turn each task's messages into outputs and a write-set, commit each task's
write-set in Redis (`state.commit`), then publish all outputs and commit the offsets in one
Kafka transaction (read_committed downstream).

A *task* is one partition number across the service's input topics, which are
co-partitioned (range assignment keeps partition p of every topic on one consumer). Topics
are *stateful* (their effects are written to the task's Redis slot, tracked, with the
outputs stored as the outbox until Kafka has them) or *stateless* (outputs only; a replay
computes them again, and only a committed transaction ever shows them).

What each failure does:
- a record that cannot be decoded: its DLQ, before any effect;
- Kafka or Redis unavailable (down, read-only after a failover, full, busy, loading, a
  record the broker refuses): nothing is committed; the batch is read again after a back-off
  (a task whose Redis commit went through hands back its outbox, so nothing is applied twice);
- anything else a handler raises (a bug): the same; the failing task is found by retrying
  tasks one at a time, then held back with a growing delay and reported, the others go on;
- lost ownership (the group refused our offsets, or a task's fence our writes): the
  transaction is aborted and the consumer rejoins its group;
- clients that cannot go on (producer fenced by another with our transactional ID, fatal
  state): rebuilt; after `max_restarts` in `restart_window_s` the processor is dead and
  `on_dead` ends the process with a non-zero code.

At assignment each stateful task is fenced for this consumer, set up by the service if it
asks (`StreamService.setup`: a migration of its state, in slices), then Redis's tracking is
compared with Kafka's committed offsets (`divergence.compare`): a task left with an outbox
its Kafka commit never saw republishes it first; one out of step is held back and reported
until an operator repairs it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import ConsumerRecord

from .. import txn_fencing
from ..faults import ProcessorFailed, is_fatal_for_clients, is_fenced, is_infrastructure
from ..kafka import make_consumer, make_producer
from ..publishing import BatchPublisher, PublishFailed
from ..settings import CommonSettings
from ..state.commit import Commit, Output, tracking_field
from ..state.keys import TaskKeys
from ..state.lua_script import ScriptCalls
from ..state.writes import WriteSet
from .divergence import Divergence, after_replay, compare
from .divergences import DivergenceBook
from .metrics import BATCH_SECONDS, DEAD_LETTERS, DIVERGED, LAG, LOOP_ALIVE, RECORDS, RETRIES, STUCK
from .outgoing import dead_letter, describe_rejection
from .service import StreamService, TaskContext, TaskNotReady

log = logging.getLogger(__name__)
txn_fencing.install()

Batches = dict[TopicPartition, list[ConsumerRecord]]


class _NotCommitted(Exception):
    """A batch was not committed: where to resume reading each partition, and whether the
    cause was the infrastructure."""

    def __init__(self, resume_at: dict[TopicPartition, int], cause: BaseException) -> None:
        super().__init__(type(cause).__name__)
        self.resume_at = resume_at
        self.infrastructure = is_infrastructure(cause) or isinstance(cause, (PublishFailed, TaskNotReady))
        self.__cause__ = cause


class _OwnershipLost(Exception):
    """Another consumer owns our tasks now; nothing to read again here."""


class _Rebalance(ConsumerRebalanceListener):
    """Lets a rebalance take partitions away only between batches."""

    def __init__(self, processor: StreamProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._processor._lock:
            self._processor._forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        # aiokafka fetches for the new assignment before this runs and swallows what it
        # raises: new tasks are checked in the processing loop (`_take_ownership`).
        self._processor.joined = True
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class StreamProcessor:
    """Consumes `service`'s inputs in `group_id`; see the module docstring."""

    def __init__(
        self,
        settings: CommonSettings,
        client,
        service: StreamService,
        *,
        group_id: str,
        instance_id: str | None = None,
        max_records: int = 200,
        max_batch_bytes: int = 8 * 1024 * 1024,
        session_timeout_ms: int = 15000,
        on_dead: Callable[[str], None] | None = None,
        max_restarts: int = 5,
        restart_window_s: float = 300.0,
        batch_timeout_s: float = 120.0,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.redis = client
        self.service = service
        self.group_id = group_id
        self.instance_id = instance_id or socket.gethostname()
        self.max_records = max_records
        self.max_batch_bytes = max_batch_bytes
        self.session_timeout_ms = session_timeout_ms
        self.on_dead = on_dead
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self.batch_timeout_s = batch_timeout_s
        self.prepare = prepare
        self.commit = Commit(client)
        self.divergences = DivergenceBook(client, settings.redis_key_prefix, service.name, group_id)
        topics = settings.topics
        self.topics = [topics.name(t.base) for t in service.inputs]
        self._base = {topics.name(t.base): t.base for t in service.inputs}
        self._stateful = {topics.name(t.base) for t in service.inputs if t.stateful}
        self.state = "stopped"  # starting | running | retrying | restarting | dead | stopped
        self.dead_reason: str | None = None
        self.joined = False
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._partitions: dict[str, int] = {}
        self._reset_tasks()

    def _reset_tasks(self) -> None:
        self._tokens: dict[int, str] = {}  # owned tasks -> our fence token
        self._diverged: dict[TopicPartition, Divergence] = {}
        self._suspects: set[int] = set()  # in a batch that failed for no known reason
        self._stuck: dict[int, tuple[float, float]] = {}  # failed alone: (retry at, delay)
        self._repairs_checked_at = 0.0
        self._positions: dict[TopicPartition, int] = {}  # next offset to process, for the lag
        self._producer_spoilt = False
        self._after_commit: list[WriteSet] = []
        self._applied_now: list[int] = []

    @property
    def partitions(self) -> dict[str, int]:
        """Partition count of each input and declared output topic, by default name (known once started)."""
        return dict(self._partitions)

    def task_keys(self, partition: int) -> TaskKeys:
        return TaskKeys(self.settings.redis_key_prefix, self.service.name, partition)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start in the background: the processor connects (creating its topics first with
        `prepare`), retrying while Kafka or Redis are away; /readyz says when it holds its tasks."""
        self.running = True
        self.state = "starting"
        self._task = asyncio.create_task(self._supervise(), name=f"{self.group_id}-loop")

    async def _connect(self) -> None:
        """Clients up, or retried with back-off (up to 10 s) until they are: Kafka or Redis away
        at start-up is waited for, not counted as a failure of the loop."""
        delay = 0.5
        while self.running:
            try:
                if self.prepare is not None:
                    await within(self.prepare(), 60, "preparing the topics")
                await within(self._start_clients(), 60, "starting the clients")
                return
            except Exception as exc:  # noqa: BLE001 - whatever it was, try again; it is logged
                log.warning("%s cannot connect yet (%s: %s); again in %.1f s", self.group_id,
                            type(exc).__name__, exc, delay)
                await self._stop_clients()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

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
        """Doing its work: in its group, holding its tasks, none out of step or stuck."""
        return self.healthy and self.joined and self.state == "running" and not self._diverged and not self._stuck

    def status(self) -> dict:
        return {
            "state": self.state,
            "joined": self.joined,
            "assigned": len(self.consumer.assignment()) if self.consumer else 0,
            "diverged": [d.as_json() for d in self._diverged.values()],
            "stuck": sorted(self._stuck),
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
        self.consumer = make_consumer(
            self.settings,
            group_id=self.group_id,
            group_instance_id=member,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.session_timeout_ms // 5),
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        await self.producer.start()
        await self.consumer.start()
        await self._check_co_partitioned()
        for base in self.service.outputs:
            self._partitions[base] = len(await self.producer.partitions_for(self.settings.topics.name(base)))
        await self.commit.ensure_loaded()
        consumer = self.consumer
        txn_fencing.register_group(self.group_id, lambda: txn_fencing.GroupMetadata(
            consumer._coordinator.generation, consumer._coordinator.member_id, member))
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))

    async def _check_co_partitioned(self) -> None:
        """A task is partition p of every input: they must all have as many partitions."""
        counts = {}
        for topic in self.topics:
            partitions = self.consumer.partitions_for_topic(topic)
            if partitions is None:
                await self.consumer._client.force_metadata_update()
                partitions = self.consumer.partitions_for_topic(topic) or set()
            counts[topic] = len(partitions)
        if len(set(counts.values())) > 1:
            raise RuntimeError(f"the input topics of {self.service.name} must have as many partitions each "
                               f"(a task is one partition number across them): {counts}")
        self._partitions.update({self._base[topic]: n for topic, n in counts.items()})

    async def _stop_clients(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                try:
                    await within(client.stop(), 15, f"stopping {type(client).__name__}")
                except Exception as exc:  # noqa: BLE001 - stopping a broken client: dropped anyway
                    log.warning("stopping a client failed: %s", type(exc).__name__)
        self.consumer = self.producer = None
        self.joined = False

    async def _supervise(self) -> None:
        restarts: deque[float] = deque()
        LOOP_ALIVE.labels(self.group_id).set(1)
        await self._connect()
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
                self._reset_tasks()
                await asyncio.sleep(min(30.0, 0.5 * 2 ** len(restarts)))
                await self._connect()

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
                # Outside the lock: it asks the group coordinator for committed offsets, and a
                # rebalance (which takes the lock to revoke) may be what the coordinator is doing.
                await self._bounded(self._take_ownership(), batches)
                # Under the lock a rebalance cannot revoke partitions half-way through a batch.
                async with self._lock:
                    assigned = self.consumer.assignment()
                    batches = {tp: rs for tp, rs in batches.items()
                               if tp in assigned and tp.partition in self._tokens}
                    # A repaired partition reads again from where the repair sent it: what
                    # this iteration read of it came from before that.
                    repaired = await self._apply_repairs()
                    batches = self._ready({tp: rs for tp, rs in batches.items() if tp not in repaired})
                    if batches:
                        await self._bounded(self._process(batches), batches)
                self.state = "running"  # an iteration without a failure, records or not
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
                if not failure.infrastructure:
                    self._suspect({tp.partition for tp in failure.resume_at})
                self._seek(failure.resume_at)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _bounded(self, work, batches: Batches) -> None:
        """`work`, within `batch_timeout_s`: a batch or a takeover that hangs (a broker that
        never answers, a client stuck after a failover) must not freeze the processor behind
        a healthy /healthz. Infrastructure failures become a retry of the batch."""
        try:
            await asyncio.wait_for(work, self.batch_timeout_s)
        except TimeoutError as exc:
            raise ProcessorFailed(f"a batch or takeover took over {self.batch_timeout_s:.0f} s") from exc
        except (_NotCommitted, _OwnershipLost):
            raise
        except Exception as exc:
            if is_fatal_for_clients(exc):
                raise
            if is_fenced(exc):
                self._lost_ownership(exc)
                raise _OwnershipLost() from exc
            raise _NotCommitted({tp: rs[0].offset for tp, rs in batches.items()}, exc) from exc

    def _report_lag(self) -> None:
        for tp in self.consumer.assignment():
            highwater, position = self.consumer.highwater(tp), self._positions.get(tp)
            if highwater is not None and position is not None:
                LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(max(0, highwater - position))

    def _seek(self, resume_at: dict[TopicPartition, int]) -> None:
        """Read partitions again from `resume_at`; one no longer assigned is left alone."""
        assigned = self.consumer.assignment()
        for tp, offset in resume_at.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)

    def _forget(self, revoked) -> None:
        for tp in revoked:
            self._tokens.pop(tp.partition, None)
            self._suspects.discard(tp.partition)
            if self._diverged.pop(tp, None) is not None:
                DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(0)
            if self._stuck.pop(tp.partition, None) is not None:
                STUCK.labels(self.group_id, str(tp.partition)).set(0)

    # ---------------------------------------------------------------- ownership

    async def _take_ownership(self) -> None:
        """Fence tasks new to this consumer, then compare Redis's tracking of each stateful
        input partition with Kafka's committed offset. The fence comes first: a zombie that
        still commits after it is refused. A failure here only delays: the tasks stay new."""
        assigned = self.consumer.assignment()
        fresh = sorted({tp.partition for tp in assigned} - self._tokens.keys())
        if not fresh:
            return
        coordinator = self.consumer._coordinator
        token = f"{coordinator.generation}:{coordinator.member_id}"
        stateful = [tp for tp in assigned if tp.partition in fresh and tp.topic in self._stateful]
        committed = {tp: meta.offset for tp, meta in
                     (await coordinator.fetch_committed_offsets(set(assigned))).items() if meta.offset >= 0}
        for tp in assigned:
            if tp.partition in fresh and tp in committed:
                self._positions[tp] = committed[tp]
        for partition in fresh:
            tps = [tp for tp in stateful if tp.partition == partition]
            if tps:
                await self._own_task(partition, tps, token, committed)
            self._tokens[partition] = token

    async def _own_task(self, partition: int, tps: list[TopicPartition], token: str,
                        committed: dict[TopicPartition, int]) -> None:
        keys = self.task_keys(partition)
        await self.commit.claim(keys, token)
        if self.service.setup is not None:
            await self.service.setup(partition, functools.partial(self.commit.write, keys, token))
        marks = await self.commit.marks(keys)
        republish = False
        for tp in tps:
            applied = marks.tracked.get(tracking_field(tp))
            verdict = compare(applied, committed.get(tp), applied if marks.outbox_pending else None)
            if verdict == "republish":
                republish = True
            elif verdict in ("redis_behind", "kafka_behind"):
                await self._report(Divergence.found(self.group_id, tp, verdict, applied, committed.get(tp)))
        if republish and not any(tp in self._diverged for tp in tps):
            await self._republish(partition, tps, keys, token)

    async def _republish(self, partition: int, tps: list[TopicPartition], keys: TaskKeys, token: str) -> None:
        """The task's last batch was applied in Redis but never committed in Kafka: publish
        its stored outputs and commit its offsets before anything new of the task."""
        tracked, outputs = await self.commit.replayed(keys)
        offsets = {tp: tracked[tracking_field(tp)] + 1 for tp in tps if tracking_field(tp) in tracked}
        await self._publish_and_commit(outputs, offsets)
        await self.commit.forget_outboxes([(keys, token)])
        self._seek(offsets)
        self._positions.update(offsets)
        log.info("task %d of %s: republished %d outputs of a batch applied before a restart",
                 partition, self.group_id, len(outputs))

    async def _report(self, divergence: Divergence) -> None:
        tp = divergence.tp
        self._diverged[tp] = divergence
        DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(1)
        log.error("Kafka and Redis out of step, not consuming task %d until repaired: %s",
                  tp.partition, divergence.describe())
        await self.divergences.report(divergence)

    async def _apply_repairs(self) -> set[TopicPartition]:
        """Carry out the repairs an operator asked for on partitions held back here; the
        partitions repaired, each now read again from the offset its repair chose."""
        if not self._diverged or time.monotonic() < self._repairs_checked_at + 1.0:
            return set()
        self._repairs_checked_at = time.monotonic()
        pending = await self.divergences.pending(self._diverged)
        for tp, action in pending.items():
            divergence = self._diverged.pop(tp)
            keys = self.task_keys(tp.partition)
            if action == "reapply":
                resume = None if divergence.applied is None else divergence.applied + 1
            else:
                committed = divergence.committed
                await self.commit.set_tracked(keys, tracking_field(tp), None if committed is None else committed - 1)
                resume = committed
            if resume is None:  # an exact offset: seek_to_beginning resets asynchronously, unchecked
                resume = (await self.consumer.beginning_offsets([tp]))[tp]
            self.consumer.seek(tp, resume)
            await self.divergences.repaired(tp)
            DIVERGED.labels(self.group_id, tp.topic, str(tp.partition)).set(0)
            log.warning("repaired %s by %s: %s", f"{tp.topic}[{tp.partition}]", action, divergence.describe())
        return set(pending)

    # ---------------------------------------------------------------- what is processed now

    def _held(self, partition: int) -> bool:
        stuck = self._stuck.get(partition)
        return (stuck is not None and stuck[0] > time.monotonic()) or any(
            tp.partition == partition for tp in self._diverged)

    def _hold_back(self) -> None:
        """Pause the partitions of tasks out of step or stuck."""
        assigned = self.consumer.assignment()
        waiting = {tp for tp in assigned if self._held(tp.partition)}
        paused = self.consumer.paused()
        if waiting - paused:
            self.consumer.pause(*(waiting - paused))
        if paused - waiting:
            self.consumer.resume(*(paused - waiting))

    def _ready(self, batches: Batches) -> Batches:
        """The records to apply now, at most `max_batch_bytes` of them (records range from one
        profile to thousands of rows); the others are read again later."""
        isolate = next((p for p in sorted(self._suspects) if any(tp.partition == p for tp in batches)), None)
        kept: Batches = {}
        budget = self.max_batch_bytes
        for tp, records in batches.items():
            if self._held(tp.partition) or (isolate is not None and tp.partition != isolate) or budget <= 0:
                self._seek({tp: records[0].offset})
                continue
            taken = 0
            while taken < len(records) and (taken == 0 or budget > 0):
                budget -= len(records[taken].value or b"")
                taken += 1
            if taken < len(records):
                self._seek({tp: records[taken].offset})
            kept[tp] = records[:taken]
        return kept

    def _suspect(self, partitions: set[int]) -> None:
        """A batch failed for no known reason: retry its tasks one at a time; one that fails
        alone is held back with a growing delay (never dead-lettered: its effect may be
        partly applied)."""
        if len(partitions) > 1:
            self._suspects |= partitions
            return
        for partition in partitions:
            self._suspects.discard(partition)
            _, delay = self._stuck.get(partition, (0.0, 0.5))
            delay = min(delay * 2, 60.0)
            self._stuck[partition] = (time.monotonic() + delay, delay)
            STUCK.labels(self.group_id, str(partition)).set(1)
            log.error("task %d of %s fails on its own; held back %.0f s before the next try",
                      partition, self.group_id, delay)

    # ---------------------------------------------------------------- apply, publish, commit

    async def _process(self, batches: Batches) -> None:
        """Apply `batches` task by task, commit their state, then publish and commit in one
        Kafka transaction; or raise `_NotCommitted` / `_OwnershipLost`."""
        with BATCH_SECONDS.labels(self.group_id).time():
            try:
                if self._producer_spoilt:
                    await self._renew_producer()
                outputs, offsets, counts, committed_tasks = await self._apply(batches)
                if self._applied_now and self.settings.stream_failpoint == "exit-after-redis-commit":
                    log.critical("failpoint: exiting after the Redis commit of tasks %s", self._applied_now)
                    os._exit(137)
                await self._publish_and_commit(outputs, offsets)
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
        for metric, amount in counts:
            metric.inc(amount)
        for tp, records in batches.items():
            RECORDS.labels(self.group_id, tp.topic).inc(len(records))
        self._positions.update(offsets)
        for partition in {tp.partition for tp in batches}:
            self._suspects.discard(partition)
            if self._stuck.pop(partition, None) is not None:
                STUCK.labels(self.group_id, str(partition)).set(0)
        await self.commit.forget_outboxes([(self.task_keys(p), self._tokens[p]) for p in committed_tasks
                                           if p in self._tokens])
        await self._write_hints()

    async def _write_hints(self) -> None:
        hints = [w for w in self._after_commit if len(w)]
        self._after_commit = []
        if not hints:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for writes in hints:
                for command, key, args in writes.ops:
                    pipe.execute_command(command, writes.keys[key], *args)
            await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - hints only: a lost one costs speed, never data
            log.warning("after-commit hints not written (%s)", type(exc).__name__)

    async def _apply(self, batches: Batches):
        """Each task's handlers, then one pipeline of the tasks' Redis commits. Returns what
        to publish, the offsets to commit, the counts to record and the tasks committed."""
        by_task: dict[int, Batches] = defaultdict(dict)
        for tp, records in batches.items():
            by_task[tp.partition][tp] = records
        now = datetime.now(UTC)
        outputs: list[Output] = []
        offsets: dict[TopicPartition, int] = {}
        counts: list = []
        self._after_commit: list[WriteSet] = []
        pending = []  # (partition, stateful tps with (first, last), stateful context)
        calls = ScriptCalls(self.redis)
        for partition, task in sorted(by_task.items()):
            keys = self.task_keys(partition)
            stateful = {tp: rs for tp, rs in task.items() if tp.topic in self._stateful}
            free = {tp: rs for tp, rs in task.items() if tp.topic not in self._stateful}
            for part in (stateful, free):
                if not part:
                    continue
                ctx = TaskContext(partition, keys, self.redis, self.settings, now, self._partitions)
                await self._run_handlers(ctx, part)
                offsets.update({tp: rs[-1].offset + 1 for tp, rs in part.items()})
                if part is free:
                    if len(ctx.writes):
                        raise RuntimeError(f"a handler wrote state for a stateless input of {self.service.name}")
                    outputs += ctx.outputs
                    counts += ctx.counts.items()
                    self._after_commit.append(ctx.after_commit)
                else:
                    spans = {tp: (rs[0].offset, rs[-1].offset) for tp, rs in part.items()}
                    self.commit.queue(calls, keys, self._tokens[partition], spans, ctx.writes, ctx.outputs)
                    pending.append((partition, spans, ctx))
        committed = []
        self._applied_now = []  # tasks whose commit applied new input (not a replay)
        if pending:
            results = await calls.run()
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            for (partition, spans, ctx), applied in zip(pending, results, strict=True):
                if applied == 1:
                    self._applied_now.append(partition)
                    outputs += ctx.outputs
                    counts += ctx.counts.items()
                    self._after_commit.append(ctx.after_commit)
                else:
                    outputs += await self._replayed(partition, spans, offsets)
                committed.append(partition)
        return outputs, offsets, counts, committed

    async def _replayed(self, partition: int, spans: dict[TopicPartition, tuple[int, int]],
                        offsets: dict[TopicPartition, int]) -> list[Output]:
        """The task's batch was applied before (its Kafka commit never happened): its stored
        outputs, and offsets up to what Redis tracked; later records are read again."""
        tracked, outputs = await self.commit.replayed(self.task_keys(partition))
        done = {tp: tracked[tracking_field(tp)] for tp in spans if tracking_field(tp) in tracked}
        commit, resume = after_replay(done, spans)
        for tp in spans:
            offsets.pop(tp, None)
        offsets.update(commit)
        self._seek(resume)
        log.info("task %d of %s: a batch applied before is published from its outbox", partition, self.group_id)
        return outputs

    async def _run_handlers(self, ctx: TaskContext, task: Batches) -> None:
        messages = []
        for tp, records in task.items():
            base = self._base[tp.topic]
            for record in records:
                try:
                    message = self.service.decode(base, record)
                    if not self.service.handled(message):
                        raise ValueError(f"no handler for {type(message).__name__}")
                except Exception as exc:  # noqa: BLE001 - a cause in the record: its DLQ, before any effect
                    out = dead_letter(record, f"invalid {base} record: {describe_rejection(exc)}", self.service.name)
                    ctx.outputs.append((out.topic, None, out.key, out.value, out.headers))
                    ctx.count(DEAD_LETTERS.labels(self.group_id, tp.topic))
                    continue
                messages.append(message)
        for types, handler in self.service.handlers:
            mine = [m for m in messages if isinstance(m, types)]
            if mine:
                await handler(ctx, mine)

    async def _publish_and_commit(self, outputs: Sequence[Output], offsets: dict[TopicPartition, int]) -> None:
        if not outputs and not offsets:
            return
        async with self.producer.transaction():
            publisher = BatchPublisher(self.producer)
            await publisher.add_all(outputs)
            await publisher.flush()
            if offsets:
                await self.producer.send_offsets_to_transaction(offsets, self.group_id)

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
        """Another consumer owns (some of) our tasks now: forget them all and rejoin; the
        rebalance hands back what is still ours."""
        log.warning("%s lost ownership of its tasks (%s); rejoining the group", self.group_id, exc)
        self._forget(list(self.consumer.assignment()))
        self._tokens.clear()
        self.consumer._coordinator.request_rejoin()


async def within(work: Awaitable, seconds: float, what: str):
    """`work`'s result within `seconds`, or TimeoutError. Unlike asyncio.wait_for it never
    waits for the cancelled work to finish cancelling: a client call that swallows or outlasts
    its cancellation (seen after a broker was away for two minutes: the loop never came back
    from rebuilding its clients) is left behind, and the client is dropped anyway."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" noise
    raise TimeoutError(f"{what} took over {seconds:.0f} s")


def _spoils_producer(exc: BaseException) -> bool:
    """The producer's idempotence state no longer matches the broker's."""
    names = {"OutOfOrderSequenceNumber", "UnknownProducerIdError", "DuplicateSequenceNumber"}
    chain = [exc, exc.__cause__, exc.__context__]
    return any(type(item).__name__ in names for item in chain if item is not None)
