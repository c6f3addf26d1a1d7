"""Exactly-once stream processing: Redis tracking and outbox, written with the effect, plus
Kafka transactions for what is published.

Each input record is applied by one Lua script (`TrackedScript`) that, atomically:
  1. returns the outputs it stored earlier if this record's offset is already applied
     (a replay after a crash), and otherwise
  2. applies the effect, stores its outputs under the record's offset ("outbox") and
     records the offset as applied ("tracking").
`TransactionalProcessor` then publishes the outputs and commits the consumed offsets in one
Kafka transaction. A crash before the commit aborts the transaction; the records come again,
the script hands back the very same outputs, and they are published once. Tracking is kept
per (consumer group, topic, partition, workspace), so every key a script touches carries the
workspace's hash tag.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .kafka import make_consumer, make_producer
from .publishing import BatchPublisher
from .redis_store import KeySpace
from .settings import CommonSettings
from .topics import Topics, dlq_name

log = logging.getLogger(__name__)

# Failures of the infrastructure, not of a record: the batch is read again, never dead-lettered.
RETRIABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    NoScriptError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    ConnectionError,
    asyncio.TimeoutError,
)

RECORDS = Counter("stream_records_total", "Input records processed", ["group", "topic"])
DEAD_LETTERS = Counter("stream_dead_letters_total", "Input records sent to a DLQ", ["group", "topic"])
BATCH_SECONDS = Histogram("stream_batch_seconds", "Time to apply and commit one batch", ["group"])


class Outgoing(NamedTuple):
    """A record to publish: full topic name, key, value (None is a tombstone), headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


_PROLOGUE = """
local __done = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= __done then
  return redis.call('HGET', KEYS[2], ARGV[1]) or '[]'
end
"""

_EPILOGUE = """
local __outputs = apply()
redis.call('SET', KEYS[1], ARGV[1])
if #__outputs == 0 then return '[]' end
local __encoded = cjson.encode(__outputs)
redis.call('HSET', KEYS[2], ARGV[1], __encoded)
return __encoded
"""


class _LoadedScript:
    """A Lua script called by SHA: `ensure_loaded` (re)loads its source, e.g. after Redis
    restarted; `forget_loaded` marks every such script to be loaded again."""

    _all: list[_LoadedScript] = []

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._client = client
        self._loaded = False
        _LoadedScript._all.append(self)

    async def ensure_loaded(self) -> None:
        if not self._loaded:
            await self._client.script_load(self.source)
            self._loaded = True

    @staticmethod
    def forget_loaded() -> None:
        """Redis lost its script cache: load every script again before its next call."""
        for script in _LoadedScript._all:
            script._loaded = False


class TrackedScript(_LoadedScript):
    """A Lua script applied at most once per input record.

    `body` must define `local function apply()` returning a Lua array of outputs, each
    `{topic = <default topic name>, key = <string>, value = <table|string>}` (or
    `tombstone = true` instead of `value`). Its own keys start at KEYS[3] and its own
    arguments at ARGV[2]; KEYS[1], KEYS[2] and ARGV[1] belong to the tracking.
    """

    def __init__(self, client: aioredis.Redis, body: str) -> None:
        super().__init__(client, _PROLOGUE + body + _EPILOGUE)

    def queue(
        self,
        pipe: aioredis.client.Pipeline,
        tracking: tuple[str, str],
        offset: int,
        keys: Sequence[str],
        args: Sequence[bytes | str | int | float],
    ) -> None:
        """Queue one call on `pipe` (after `ensure_loaded`); its result decodes with `decode_outputs`."""
        pipe.evalsha(self.sha, 2 + len(keys), *tracking, *keys, offset, *args)


_BATCH_LOOP = """
local __done = tonumber(redis.call('GET', KEYS[1]) or '-1')
local __results, __at = {}, 2
for __r = 1, tonumber(__IN[1]) do
  local __offset, __operation, __argc = __IN[__at], __IN[__at + 1], tonumber(__IN[__at + 2])
  ARGV = {__offset}
  for __j = 1, __argc do ARGV[__j + 1] = __IN[__at + 2 + __j] end
  __at = __at + 3 + __argc
  if tonumber(__offset) <= __done then
    __results[__r] = redis.call('HGET', KEYS[2], __offset) or '[]'
  else
    local __outputs = __OPERATIONS[__operation]()
    local __encoded = '[]'
    if #__outputs > 0 then
      __encoded = cjson.encode(__outputs)
      redis.call('HSET', KEYS[2], __offset, __encoded)
    end
    redis.call('SET', KEYS[1], __offset)
    __done = tonumber(__offset)
    __results[__r] = __encoded
  end
end
return __results
"""


class TrackedBatchScript(_LoadedScript):
    """Several operations in one Lua script, each record applied at most once, a whole run of
    one partition's records of one workspace per call.

    What `TrackedScript` does per call, this does per record inside one call: one EVALSHA
    instead of one per record (a profile of segment-store put half its time in redis-py's
    per-command packing and parsing). `operations` maps a name to a body that defines
    `local function apply()` reading ARGV as a `TrackedScript` body does (ARGV[1] the offset,
    its own arguments from ARGV[2]); `prelude` (e.g. shared helpers) comes before them.
    Each record's tracking is recorded as soon as it is applied, so an error in a later
    record never leaves an earlier one applied but untracked.
    """

    def __init__(self, client: aioredis.Redis, prelude: str, operations: dict[str, str]) -> None:
        wrapped = "".join(f"__OPERATIONS[{name!r}] = (function()\n{body}\nreturn apply\nend)()\n"
                          for name, body in operations.items())
        super().__init__(client, "local __IN = ARGV\nlocal ARGV = {}\n" + prelude + "\nlocal __OPERATIONS = {}\n"
                         + wrapped + _BATCH_LOOP)

    def queue(
        self,
        pipe: aioredis.client.Pipeline,
        tracking: tuple[str, str],
        keys: Sequence[str],
        records: Sequence[tuple[int, str, Sequence[bytes | str | int | float]]],
    ) -> None:
        """Queue one call applying `records`, each (offset, operation, arguments), in order;
        its result is a list with each record's raw outputs (see `decode_outputs`)."""
        args: list = [len(records)]
        for offset, operation, arguments in records:
            args += (offset, operation, len(arguments), *arguments)
        pipe.evalsha(self.sha, 2 + len(keys), *tracking, *keys, *args)


def decode_outputs(raw: bytes | str, topics: Topics) -> list[Outgoing]:
    """Turn what a `TrackedScript` returned into records to publish."""
    items = orjson.loads(raw)
    if isinstance(items, dict):  # cjson encodes an empty table as {}
        return []
    out = []
    for item in items:
        value = item.get("value")
        if item.get("tombstone"):
            encoded = None
        elif isinstance(value, str):
            encoded = value.encode()
        else:
            encoded = orjson.dumps(value)
        key = item.get("key")
        out.append(Outgoing(topics.name(item["topic"]), key.encode() if key is not None else None, encoded))
    return out


@dataclass
class Tracking:
    """The tracking keys of one consumer group, and which outbox entries a batch wrote."""

    keys: KeySpace
    group_id: str
    written: dict[str, list[int]] = field(default_factory=dict)

    def for_record(self, record: ConsumerRecord, workspace_id: str) -> tuple[str, str]:
        base = self.keys.workspace(workspace_id, "eos", self.group_id, record.topic, str(record.partition))
        outbox = base + ":out"
        self.written.setdefault(outbox, []).append(record.offset)
        return base, outbox

    def begin(self) -> None:
        """A new transaction: what an earlier, failed one wrote stays in the outbox for its replay."""
        self.written = {}

    async def forget_published(self, client: aioredis.Redis) -> None:
        """Drop the outbox entries of the transaction just committed; replays never reach them
        again. Best effort: an entry left behind is garbage, never published twice, so a
        failure here must not send committed records round again."""
        written, self.written = self.written, {}
        if not written:
            return
        pipe = client.pipeline(transaction=False)
        for outbox, offsets in written.items():
            pipe.hdel(outbox, *offsets)
        try:
            await pipe.execute()
        except RETRIABLE as exc:
            log.warning("outbox entries of a committed batch not dropped (%s); they stay as garbage", exc)


BatchHandler = Callable[[TopicPartition, list[ConsumerRecord], Tracking], Awaitable[list[Outgoing]]]
"""Applies one partition's records and returns what to publish, in order. Bad records it
can name go out as DLQ `Outgoing`s (see `dead_letter`); anything it raises sends the batch
back through one record at a time, and the record that still fails to its DLQ."""


def dead_letter(record: ConsumerRecord, reason: str, service: str) -> Outgoing:
    """The DLQ record for `record`: its original key and bytes, the reason in headers."""
    headers = [
        ("dlq.reason", reason.encode()[:4096]),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.service", service.encode()),
    ]
    log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
    return Outgoing(dlq_name(record.topic), record.key, record.value, headers)


class InFlight:
    """Per partition, the last offset of the batch being applied: written before its Lua calls,
    dropped once its transaction committed. A partition that still has one when it is
    assigned may hold records applied in Redis whose events were never committed; they are
    republished before anything else is applied (see `TransactionalProcessor`), so a
    replay after a crash cannot publish a user's events after events applied later.
    One hash per consumer group, outside every workspace: it is written once per batch."""

    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self._client = client
        self.key = key

    @staticmethod
    def _field(tp: TopicPartition) -> str:
        return f"{tp.topic}:{tp.partition}"  # Kafka topic names never hold ':'

    async def mark(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        await self._client.hset(self.key, mapping={self._field(tp): records[-1].offset
                                                   for tp, records in batches.items()})

    async def clear(self, tps: Sequence[TopicPartition]) -> None:
        """Best effort: a marker left behind only makes the next owner check a partition."""
        try:
            await self._client.hdel(self.key, *(self._field(tp) for tp in tps))
        except RETRIABLE as exc:
            log.warning("in-flight markers not dropped (%s)", exc)

    async def read(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        tps = list(tps)
        if not tps:
            return {}
        values = await self._client.hmget(self.key, [self._field(tp) for tp in tps])
        return {tp: int(v) for tp, v in zip(tps, values, strict=True) if v is not None}


class _Rebalance(ConsumerRebalanceListener):
    """Lets a rebalance take partitions away only between transactions, so the next owner
    never starts on a partition whose batch is still being committed here."""

    def __init__(self, processor: TransactionalProcessor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked) -> None:
        async with self._processor._lock:
            self._processor._forget_partitions(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        # aiokafka fetches for the new assignment before this runs, and swallows what it
        # raises: the processor checks new partitions for in-flight batches itself.
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class _NotCommitted(Exception):
    """A batch, or its tail, was not committed: where to resume reading each partition."""

    def __init__(self, resume_at: dict[TopicPartition, int]) -> None:
        super().__init__(resume_at)
        self.resume_at = resume_at


class TransactionalProcessor:
    """Consume `topics` in `group_id`, apply each batch with `handler`, then publish its
    outputs and commit its offsets in one Kafka transaction (read_committed downstream).

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
        keys = KeySpace(settings.redis_key_prefix, service)
        self.tracking = Tracking(keys, group_id)
        self.in_flight = InFlight(client, keys.service_wide("eos-inflight", group_id))
        self._recovering: dict[TopicPartition, int] = {}  # in flight when assigned: up to which offset
        self._checked: set[TopicPartition] = set()  # assigned partitions checked for in-flight batches
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.running = False

    async def start(self) -> None:
        self.producer = make_producer(
            self.settings,
            transactional_id=f"{self.group_id}.{self.instance_id}",
            transaction_timeout_ms=30000,
            # A transaction begun right after the previous commit meets CONCURRENT_TRANSACTIONS
            # until that commit's markers are written (a few ms); aiokafka waits retry_backoff_ms
            # (100 by default) before asking again, which was the latency tail.
            retry_backoff_ms=10,
        )
        self.consumer = make_consumer(
            self.settings,
            group_id=self.group_id,
            group_instance_id=f"{self.group_id}.{self.instance_id}",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.session_timeout_ms // 5),
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))
        self.running = True
        self._task = asyncio.create_task(self._run(), name=f"{self.group_id}-loop")

    async def stop(self) -> None:
        self.running = False
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        if self.consumer:
            await self.consumer.stop()
        if self.producer:
            await self.producer.stop()

    @property
    def healthy(self) -> bool:
        return self.running and self._task is not None and not self._task.done()

    async def _run(self) -> None:
        backoff = 0.1
        while self.running:
            if self._recovering or self.consumer.paused():
                await self._hold_back_until_recovered()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
            try:
                await self._check_new_partitions(batches)
                if self._recovering:
                    batches = self._only_in_doubt(batches)
                if not batches:
                    continue
                async with self._lock:
                    await self._process(batches)
                backoff = 0.1
            except _NotCommitted as failure:
                # Kafka or Redis is away: read again, later, what was not committed.
                exc = failure.__cause__
                log.warning("batch not applied (%s: %s); retrying in %.1f s", type(exc).__name__, exc, backoff)
                if isinstance(exc, NoScriptError):
                    _LoadedScript.forget_loaded()
                for tp, offset in failure.resume_at.items():
                    self.consumer.seek(tp, offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _check_new_partitions(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Partitions new to this instance may have been left in flight by their last owner:
        their markers say up to which offset (checked before any of their records is applied)."""
        fresh = (self.consumer.assignment() | batches.keys()) - self._checked
        if fresh:
            try:
                self._recovering.update(await self.in_flight.read(sorted(fresh)))
            except RETRIABLE as exc:
                raise _NotCommitted({tp: records[0].offset for tp, records in batches.items()}) from exc
            self._checked |= fresh

    def _forget_partitions(self, revoked) -> None:
        for tp in revoked:
            self._recovering.pop(tp, None)
            self._checked.discard(tp)

    async def _hold_back_until_recovered(self) -> None:
        """While partitions left in flight are replayed, every other partition waits: a user's
        events must not be published after events of records applied after them."""
        assigned = self.consumer.assignment()
        for tp, last in list(self._recovering.items()):
            if tp not in assigned or await self.consumer.position(tp) > last:
                del self._recovering[tp]
        if self._recovering:
            self.consumer.pause(*(assigned - self._recovering.keys()))
        else:
            self.consumer.resume(*self.consumer.paused())
            log.info("partitions left in flight are republished; consuming everything")

    def _only_in_doubt(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> dict:
        """The records of `batches` that were in flight; the rest are read again later."""
        kept = {}
        for tp, records in batches.items():
            last = self._recovering.get(tp)
            in_doubt = [r for r in records if last is not None and r.offset <= last]
            if len(in_doubt) < len(records):
                self.consumer.seek(tp, records[len(in_doubt)].offset)
            if in_doubt:
                kept[tp] = in_doubt
        return kept

    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Commit `batches` in one transaction; if that fails for a reason other than the
        infrastructure, one record at a time, dead-lettering the records that still fail.
        Raises `_NotCommitted` with where to resume each partition."""
        with BATCH_SECONDS.labels(self.group_id).time():
            try:
                await self.in_flight.mark(batches)
                await self._transaction(batches)
                await self.in_flight.clear(list(batches))
                return
            except RETRIABLE as exc:
                raise _NotCommitted({tp: records[0].offset for tp, records in batches.items()}) from exc
            except Exception:  # noqa: BLE001 - find the poison record: one record at a time
                log.exception("batch failed; retrying record by record")
            resume_at = {tp: records[0].offset for tp, records in batches.items()}
            for tp, records in batches.items():
                for record in records:
                    try:
                        await self._commit_one_or_dead_letter(tp, record)
                    except RETRIABLE as exc:
                        raise _NotCommitted(resume_at) from exc
                    resume_at[tp] = record.offset + 1
            await self.in_flight.clear(list(batches))

    async def _commit_one_or_dead_letter(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            await self._transaction({tp: [record]})
        except RETRIABLE:
            raise
        except Exception as exc:  # noqa: BLE001 - the record is poison: park it, move on
            outgoing = dead_letter(record, f"{type(exc).__name__}: {exc}", self.service)
            async with self.producer.transaction():
                await self.producer.send(outgoing.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers)
                await self.producer.send_offsets_to_transaction({tp: record.offset + 1}, self.group_id)
            DEAD_LETTERS.labels(self.group_id, tp.topic).inc()

    async def _transaction(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        self.tracking.begin()
        await self._publish_and_commit(batches)
        await self.tracking.forget_published(self.redis)

    async def _publish_and_commit(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        async with self.producer.transaction():
            offsets = {}
            publisher = BatchPublisher(self.producer)
            for tp, records in batches.items():
                outputs = await self.handler(tp, records, self.tracking)
                for out in outputs:
                    if out.topic.endswith(".dlq"):
                        DEAD_LETTERS.labels(self.group_id, tp.topic).inc()
                    await publisher.add(out.topic, out.key, out.value, out.headers)
                offsets[tp] = records[-1].offset + 1
                RECORDS.labels(self.group_id, tp.topic).inc(len(records))
            await publisher.flush()
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
