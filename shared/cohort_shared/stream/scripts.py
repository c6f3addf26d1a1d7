"""Lua scripts applied at most once per input record, and only by the partition's owner.

Each tracked call, atomically:
  0. refuses to run (`FENCED`) unless the partition's fence still names this owner: an
     instance that lost the partition (frozen past a rebalance, then resumed) cannot write;
  1. returns the outputs it stored earlier if the record's offset is already applied (a
     replay after a crash), and otherwise
  2. applies the effect, stores its outputs under the offset ("outbox") and records the
     offset as applied ("tracking").
Redis runs a script all or nothing for the failures that matter here: READONLY and OOM are
refused at the script's first write, before anything changed.

Call layout: KEYS = tracking, outbox, <the body's own keys>, fence hash;
ARGV = offset(s)…, <the body's own arguments>, fence field, fence token. The fence travels
last and is removed before the body runs, so a body reads its keys from KEYS[3] and its
arguments from ARGV[2], as before fencing existed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import redis.asyncio as aioredis

_FENCE = """
local __fence_key, __fence_token, __fence_field = KEYS[#KEYS], ARGV[#ARGV], ARGV[#ARGV - 1]
KEYS[#KEYS] = nil
ARGV[#ARGV] = nil
ARGV[#ARGV] = nil
if redis.call('HGET', __fence_key, __fence_field) ~= __fence_token then
  return redis.error_reply('FENCED partition ' .. __fence_field .. ' is owned by another consumer')
end
"""

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


class Track(NamedTuple):
    """Where one record's tracking lives and which fence guards its partition."""

    tracking_key: str
    outbox_key: str
    fence_key: str
    fence_field: str
    fence_token: str

    def keys(self, own: Sequence[str]) -> list[str]:
        return [self.tracking_key, self.outbox_key, *own, self.fence_key]

    def fence_args(self) -> list[str]:
        return [self.fence_field, self.fence_token]


class LoadedScript:
    """A Lua script called by SHA: `ensure_loaded` (re)loads its source, e.g. after Redis
    restarted; `forget_loaded` marks every such script to be loaded again."""

    _all: list[LoadedScript] = []

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._client = client
        self._loaded = False
        LoadedScript._all.append(self)

    async def ensure_loaded(self) -> None:
        if not self._loaded:
            await self._client.script_load(self.source)
            self._loaded = True

    @staticmethod
    def forget_loaded() -> None:
        """Redis lost its script cache: load every script again before its next call."""
        for script in LoadedScript._all:
            script._loaded = False


class TrackedScript(LoadedScript):
    """A Lua script applied at most once per input record.

    `body` must define `local function apply()` returning a Lua array of outputs, each
    `{topic = <default topic name>, key = <string>, value = <table|string>}` (or
    `tombstone = true` instead of `value`). Its own keys start at KEYS[3] and its own
    arguments at ARGV[2]; KEYS[1], KEYS[2] and ARGV[1] belong to the tracking.
    """

    def __init__(self, client: aioredis.Redis, body: str) -> None:
        super().__init__(client, _FENCE + _PROLOGUE + body + _EPILOGUE)

    def queue(
        self,
        pipe: aioredis.client.Pipeline,
        track: Track,
        offset: int,
        keys: Sequence[str],
        args: Sequence[bytes | str | int | float],
    ) -> None:
        """Queue one call on `pipe` (after `ensure_loaded`); its result decodes with `decode_outputs`."""
        all_keys = track.keys(keys)
        pipe.evalsha(self.sha, len(all_keys), *all_keys, offset, *args, *track.fence_args())


class TrackedBatchScript(LoadedScript):
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
        super().__init__(client, _FENCE + "local __IN = ARGV\nlocal ARGV = {}\n" + prelude + "\nlocal __OPERATIONS = {}\n"
                         + wrapped + _BATCH_LOOP)

    def queue(
        self,
        pipe: aioredis.client.Pipeline,
        track: Track,
        keys: Sequence[str],
        records: Sequence[tuple[int, str, Sequence[bytes | str | int | float]]],
    ) -> None:
        """Queue one call applying `records`, each (offset, operation, arguments), in order;
        its result is a list with each record's raw outputs (see `decode_outputs`)."""
        args: list = [len(records)]
        for offset, operation, arguments in records:
            args += (offset, operation, len(arguments), *arguments)
        all_keys = track.keys(keys)
        pipe.evalsha(self.sha, len(all_keys), *all_keys, *args, *track.fence_args())
