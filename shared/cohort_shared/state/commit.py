"""One task's atomic write: fence, tracking, write-set and outbox, in one slot.

    KEYS   fence, tracking, outbox, then the write-set's keys (all under the task's tag)
    ARGV   token, n, then (field, first offset, last offset) for each of n input partitions,
           the outbox (bytes; '' for none; `KEEP_OUTBOX` leaves it as it is), then the
           write-set (writes.WriteSet.encode)

The script refuses (`FENCED`) unless the fence holds `token`: only the consumer that owns the
task writes its state, so a zombie that resumes after a rebalance changes nothing. If any
input partition of the batch is already tracked at or past its first offset, the batch was
applied before (the Kafka commit that should have followed did not happen): it changes
nothing and answers 0, and the caller publishes the stored outbox instead. Otherwise it
applies the commands, records the last offsets, replaces the outbox and answers 1. A write of
no input partitions that keeps the outbox (`Commit.write`) changes state outside a batch, such
as a migration of the key layout, under the same fence.
Redis runs a script all or nothing for READONLY and OOM: they are refused at its first
write, before anything changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgpack
from aiokafka import TopicPartition

from .keys import TaskKeys
from .lua_script import LuaScript, ScriptCalls
from .writes import COMMANDS, WriteSet

log = logging.getLogger(__name__)

_ALLOWED = "{" + ", ".join(f"{c} = true" for c in COMMANDS) + "}"
KEEP_OUTBOX = "="
"""No outbox of msgpack (pack_outbox: an array) is this."""
COMMIT = LuaScript(f"""
local ALLOWED = {_ALLOWED}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED ' .. KEYS[1] .. ' is owned by another consumer')
end
local n, at = tonumber(ARGV[2]), 3
local marks = {{}}
for i = 1, n do
  local done = redis.call('HGET', KEYS[2], ARGV[at])
  if done and tonumber(done) >= tonumber(ARGV[at + 1]) then return 0 end
  marks[#marks + 1] = ARGV[at]
  marks[#marks + 1] = ARGV[at + 2]
  at = at + 3
end
local outbox = ARGV[at]
local ops = tonumber(ARGV[at + 1])
at = at + 2
for i = 1, ops do
  local command, key, argc = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if not ALLOWED[command] then return redis.error_reply('ERR write-set command not allowed: ' .. command) end
  redis.call(command, KEYS[4 + key], unpack(ARGV, at + 3, at + 2 + argc))
  at = at + 3 + argc
end
if #marks > 0 then redis.call('HSET', KEYS[2], unpack(marks)) end
if outbox == '' then redis.call('DEL', KEYS[3]) elseif outbox ~= '{KEEP_OUTBOX}' then redis.call('SET', KEYS[3], outbox) end
return 1
""")


FORGET = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
""")


def tracking_field(tp: TopicPartition) -> str:
    return tp.topic  # one task reads one partition of each topic: the topic names it


Output = tuple[str, int | None, bytes | None, bytes | None]
"""A record to publish: full topic name, partition (None: by key), key, value."""


def pack_outbox(outputs: Sequence[Output]) -> bytes:
    """Stored even when empty: its presence says a batch is applied here whose Kafka commit
    is not known to have happened (the offsets must still be committed)."""
    return msgpack.packb(list(outputs), use_bin_type=True)


def unpack_outbox(raw: bytes | None) -> list[Output]:
    """The outputs as they were packed. msgpack gives arrays back as lists, so a record's
    headers (a dead letter's) come back as (name, value) tuples again: aiokafka's record
    builder refuses a header that is a list, and a task whose outbox held one could never be
    republished."""
    outputs: list[Output] = []
    for item in msgpack.unpackb(raw, raw=False) if raw else ():
        if len(item) > 4 and item[4]:
            item[4] = [tuple(header) for header in item[4]]
        outputs.append(tuple(item))
    return outputs


@dataclass(frozen=True)
class Marks:
    """What Redis holds of one task when it is assigned."""

    tracked: dict[str, int]  # topic -> last applied offset
    outbox_pending: bool


class Commit:
    """The commit and the ledger reads of tasks of one service."""

    def __init__(self, client) -> None:
        self.client = client

    async def ensure_loaded(self) -> None:
        await COMMIT.ensure_loaded(self.client)
        await FORGET.ensure_loaded(self.client)

    async def claim(self, keys: TaskKeys, token: str) -> None:
        """From now on only `token` may commit this task."""
        await self.client.set(keys.fence, token)

    async def marks(self, keys: TaskKeys) -> Marks:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.tracking)
        pipe.exists(keys.outbox)
        tracked, pending = await pipe.execute()
        return Marks({k.decode(): int(v) for k, v in tracked.items()}, bool(pending))

    def queue(self, calls: ScriptCalls, keys: TaskKeys, token: str, offsets: Mapping[TopicPartition, tuple[int, int]],
              writes: WriteSet, outputs: Sequence[Output]) -> None:
        """Queue the commit of one task's batch: `offsets` maps each input partition to the
        (first, last) offsets of its records in the batch."""
        args: list = [token, len(offsets)]
        for tp, (first, last) in offsets.items():
            args += (tracking_field(tp), first, last)
        args.append(pack_outbox(outputs))
        args += writes.encode()
        calls.add(COMMIT, [keys.fence, keys.tracking, keys.outbox, *writes.keys], args)

    async def write(self, keys: TaskKeys, token: str, writes: WriteSet) -> None:
        """Apply `writes` atomically while `token` owns the task (FENCED otherwise), outside
        any batch: no offsets tracked, the outbox left as it is."""
        await COMMIT(self.client, [keys.fence, keys.tracking, keys.outbox, *writes.keys],
                     [token, 0, KEEP_OUTBOX, *writes.encode()])

    async def replayed(self, keys: TaskKeys) -> tuple[dict[str, int], list[Output]]:
        """For a batch applied before: how far each input partition is tracked, and the
        outputs stored with it."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.tracking)
        pipe.get(keys.outbox)
        tracked, outbox = await pipe.execute()
        return {k.decode(): int(v) for k, v in tracked.items()}, unpack_outbox(outbox)

    async def forget_outboxes(self, tasks: Sequence[tuple[TaskKeys, str]]) -> None:
        """Once Kafka has them; only while each task is still ours (`(keys, our token)`: a new
        owner's outbox is not ours to drop). Best effort: a stale outbox is never published
        again, since a new owner republishes only when Redis is ahead of Kafka's offsets."""
        if not tasks:
            return
        calls = ScriptCalls(self.client)
        for keys, token in tasks:
            calls.add(FORGET, [keys.fence, keys.outbox], [token])
        try:
            failures = [a for a in await calls.run() if isinstance(a, Exception)]
            if failures:
                raise failures[0]
        except Exception as exc:  # noqa: BLE001 - best effort after the Kafka commit
            log.warning("outboxes not dropped (%s); they are never published again", type(exc).__name__)

    async def set_tracked(self, keys: TaskKeys, topic: str, last: int | None) -> None:
        """For an operator's repair: Redis takes this position (None: forgets it)."""
        if last is None:
            await self.client.hdel(keys.tracking, topic)
        else:
            await self.client.hset(keys.tracking, topic, last)
