"""A Lua script called by SHA, loaded again when Redis lost its script cache (a restart, a
failover): on a cluster, `SCRIPT LOAD` goes to every primary."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.exceptions import NoScriptError


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client, keys: Sequence[str], args: Sequence) -> object:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe, keys: Sequence[str], args: Sequence) -> None:
        """On a pipeline: the caller loads the script first (`ensure_loaded`)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    async def ensure_loaded(self, client) -> None:
        await client.script_load(self.source)
