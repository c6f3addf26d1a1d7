"""Each webhook's queue, history and counters in Redis (layout.py), and the due sets and
leases that tell dispatchers which webhooks have work and who sends for them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from cohort_shared.state.lua_script import LuaScript, ScriptCalls

from ..domain.attempts import Attempt
from ..domain.queue import QueuedEvent
from .layout import Layout, WebhookKeys

# Queue events not queued yet; an event queued again (a re-read after a crash, a replay)
# while still pending changes nothing, and one that had failed leaves the failed set.
ENQUEUE = LuaScript("""
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[i])
    redis.call('ZREM', KEYS[4], ARGV[i])
    redis.call('HDEL', KEYS[5], ARGV[i])
    added = added + 1
  end
end
return added
""")

# A lease is taken when free or renewed when ours; released only when ours.
CLAIM = LuaScript("""
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
""")
RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


@dataclass(frozen=True)
class Target:
    """A webhook events are queued for, and its dispatch shard."""

    workspace_id: str
    webhook_id: str
    shard: int

    @property
    def member(self) -> str:
        return f"{self.workspace_id}/{self.webhook_id}"


def target_of(member: bytes | str, shard: int) -> Target:
    text = member.decode() if isinstance(member, bytes) else member
    workspace_id, _, webhook_id = text.partition("/")
    return Target(workspace_id, webhook_id, shard)


@dataclass(frozen=True)
class Counts:
    delivered: int
    pending: int
    failed: int
    last_error: str | None
    last_error_at: float | None


class RedisDeliveryQueues:
    def __init__(self, client, key_prefix: str, attempts_kept: int = 1000) -> None:
        self._redis = client
        self._layout = Layout(key_prefix)
        self._attempts_kept = attempts_kept

    def keys(self, workspace_id: str, webhook_id: str) -> WebhookKeys:
        return self._layout.webhook(workspace_id, webhook_id)

    async def prepare(self) -> None:
        for script in (ENQUEUE, CLAIM, RELEASE):
            await script.ensure_loaded(self._redis)

    # ------------------------------------------------------------ queueing (fan-out)

    async def enqueue(self, batches: dict[Target, list[QueuedEvent]], now_ms: int) -> int:
        """Queue each target's events (in order), then mark the targets due (a dispatcher
        that sees the mark finds the events); the number queued."""
        if not batches:
            return 0
        # ScriptCalls: one pipeline on one server; on a cluster (whose pipelines refuse
        # EVALSHA) concurrent calls, each on its shard. Either way, the queues are written
        # before their targets are marked due.
        calls = ScriptCalls(self._redis)
        for target, events in batches.items():
            keys = self.keys(target.workspace_id, target.webhook_id)
            args = [part for queued in events for part in (queued.event_id, queued.to_json())]
            calls.add(ENQUEUE, [keys.entries, keys.queue, keys.seq, keys.failed, keys.failed_entries], args)
        answers = await calls.run()
        failed = next((a for a in answers if isinstance(a, BaseException)), None)
        if failed is not None:  # queueing is idempotent per event: the batch is simply queued again
            raise failed
        async with self._redis.pipeline(transaction=False) as pipe:
            for target in batches:
                pipe.zadd(self._layout.due(target.shard), {target.member: now_ms}, lt=True)
            await pipe.execute()
        return sum(int(a) for a in answers)

    # ------------------------------------------------------------ sending (dispatch)

    async def head(self, target: Target, size: int) -> list[str]:
        keys = self.keys(target.workspace_id, target.webhook_id)
        return [raw.decode() for raw in await self._redis.zrange(keys.queue, 0, size - 1)]

    async def load(self, target: Target, event_ids: Sequence[str]) -> list[QueuedEvent]:
        if not event_ids:
            return []
        keys = self.keys(target.workspace_id, target.webhook_id)
        raws = await self._redis.hmget(keys.entries, list(event_ids))
        return [QueuedEvent.from_json(event_id, raw) for event_id, raw in zip(event_ids, raws, strict=True) if raw]

    async def record(self, target: Target, attempts: Iterable[Attempt]) -> None:
        """Apply attempts' results: delivered events leave the queue, retried ones keep their
        place with their next time, failed ones move to the failed set; each is listed."""
        keys = self.keys(target.workspace_id, target.webhook_id)
        attempts = list(attempts)
        if not attempts:
            return
        done = [a.event_id for a in attempts if a.result != "retrying"]  # delivered or failed: out of the queue
        failed = [a for a in attempts if a.result == "failed"]
        retrying = [a for a in attempts if a.result == "retrying"]
        errors = [a for a in attempts if a.result != "delivered"]
        delivered = len(attempts) - len(errors)
        # One command per kind, not per attempt: a busy webhook records dozens at a time.
        async with self._redis.pipeline(transaction=False) as pipe:
            if done:
                pipe.zrem(keys.queue, *done)
                pipe.hdel(keys.entries, *done)
            if failed:
                pipe.zadd(keys.failed, {a.event_id: a.at for a in failed})
                pipe.hset(keys.failed_entries, mapping={a.event_id: a.queued.to_json() for a in failed})
            if retrying:
                pipe.hset(keys.entries, mapping={a.event_id: a.queued.to_json() for a in retrying})
            pipe.lpush(keys.attempts, *(a.record() for a in attempts))
            if delivered:
                pipe.hincrby(keys.stats, "delivered", delivered)
            if errors:
                pipe.hset(keys.stats, mapping={"last_error": errors[-1].error or "", "last_error_at": errors[-1].at})
            pipe.ltrim(keys.attempts, 0, self._attempts_kept - 1)
            await pipe.execute()

    async def pending(self, target: Target) -> int:
        return await self._redis.zcard(self.keys(target.workspace_id, target.webhook_id).queue)

    # ------------------------------------------------------------ due sets and leases

    async def due(self, shard: int, now_ms: int, limit: int = 200) -> list[Target]:
        found = await self._redis.zrangebyscore(self._layout.due(shard), "-inf", now_ms, start=0, num=limit)
        return [target_of(member, shard) for member in found]

    async def mark_due(self, target: Target, at_ms: int) -> None:
        await self._redis.zadd(self._layout.due(target.shard), {target.member: at_ms})

    async def clear_due(self, target: Target) -> None:
        """Nothing left to send: off the due set, unless an event came in meanwhile (the
        fan-out queues first and marks second, so one of the two sees the other)."""
        await self._redis.zrem(self._layout.due(target.shard), target.member)
        if await self.pending(target):
            await self._redis.zadd(self._layout.due(target.shard), {target.member: 0}, lt=True)

    async def claim(self, target: Target, token: str, ttl_ms: int) -> bool:
        lease = self.keys(target.workspace_id, target.webhook_id).lease
        return bool(await CLAIM(self._redis, [lease], [token, ttl_ms]))

    async def release(self, target: Target, token: str) -> None:
        await RELEASE(self._redis, [self.keys(target.workspace_id, target.webhook_id).lease], [token])

    # ------------------------------------------------------------ what operators see

    async def counts(self, workspace_id: str, webhook_id: str) -> Counts:
        keys = self.keys(workspace_id, webhook_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.stats, ["delivered", "last_error", "last_error_at"])
            pipe.zcard(keys.queue)
            pipe.zcard(keys.failed)
            (delivered, last_error, last_error_at), pending, failed = await pipe.execute()
        return Counts(int(delivered or 0), pending, failed, last_error.decode() if last_error else None,
                      float(last_error_at) if last_error_at else None)

    async def attempts(self, workspace_id: str, webhook_id: str, limit: int) -> list[dict]:
        raws = await self._redis.lrange(self.keys(workspace_id, webhook_id).attempts, 0, limit - 1)
        return [orjson.loads(raw) for raw in raws]

    async def purge(self, target: Target) -> None:
        """Forget a deleted webhook's queue, history and counters."""
        await self._redis.zrem(self._layout.due(target.shard), target.member)
        for key in self.keys(target.workspace_id, target.webhook_id).all():
            await self._redis.unlink(key)

    async def set_replay(self, workspace_id: str, webhook_id: str, state: dict) -> None:
        await self._redis.set(self.keys(workspace_id, webhook_id).replay, orjson.dumps(state))

    async def replay_state(self, workspace_id: str, webhook_id: str) -> dict | None:
        raw = await self._redis.get(self.keys(workspace_id, webhook_id).replay)
        return orjson.loads(raw) if raw else None


class InMemoryDeliveryLog:
    """What the operator API reads and changes of the queues, in dicts, for unit tests."""

    def __init__(self) -> None:
        self.counts_by_id: dict[str, Counts] = {}
        self.attempts_by_id: dict[str, list[dict]] = {}
        self.replays: dict[str, dict] = {}
        self.due: dict[str, int] = {}
        self.purged: list[str] = []

    async def counts(self, workspace_id: str, webhook_id: str) -> Counts:
        return self.counts_by_id.get(webhook_id, Counts(0, 0, 0, None, None))

    async def attempts(self, workspace_id: str, webhook_id: str, limit: int) -> list[dict]:
        return self.attempts_by_id.get(webhook_id, [])[:limit]

    async def mark_due(self, target: Target, at_ms: int) -> None:
        self.due[target.webhook_id] = at_ms

    async def purge(self, target: Target) -> None:
        self.purged.append(target.webhook_id)

    async def set_replay(self, workspace_id: str, webhook_id: str, state: dict) -> None:
        self.replays[webhook_id] = dict(state)

    async def replay_state(self, workspace_id: str, webhook_id: str) -> dict | None:
        return self.replays.get(webhook_id)
