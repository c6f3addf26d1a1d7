"""A Lua script called by SHA, loaded again when Redis lost its script cache (a restart, a
failover): on a cluster, `SCRIPT LOAD` goes to every primary. `ScriptCalls` sends many calls
together (on one server through `wire.exchange`: a commit carries thousands of arguments,
which redis-py packs at 0.8 µs each)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from redis.exceptions import NoScriptError

from .client import is_cluster
from .wire import exchange


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client, keys: Sequence[str], args: Sequence) -> object:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.ensure_loaded(client)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    async def ensure_loaded(self, client) -> None:
        await client.script_load(self.source)


class ScriptCalls:
    """Script calls sent together, answered in order (an answer may be the exception that
    call raised). One server: one round trip. A cluster: its client pipelines no scripts, so
    the calls run concurrently, each on the shard of its keys. Every script sent here must
    be safe to run twice (a broken connection sends the calls again): the commit and its
    outbox's removal are."""

    def __init__(self, client) -> None:
        self.client = client
        self.calls: list[tuple[LuaScript, Sequence[str], Sequence]] = []

    def add(self, script: LuaScript, keys: Sequence[str], args: Sequence) -> None:
        self.calls.append((script, keys, args))

    def __len__(self) -> int:
        return len(self.calls)

    async def run(self) -> list:
        if not self.calls:
            return []
        if is_cluster(self.client):
            return list(await asyncio.gather(*(script(self.client, keys, args) for script, keys, args in self.calls),
                                             return_exceptions=True))
        answers = await self._pipelined(range(len(self.calls)))
        lost = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if lost:  # Redis lost its script cache: those calls did nothing; load and send them again
            for script in {self.calls[i][0] for i in lost}:
                await script.ensure_loaded(self.client)
            for i, answer in zip(lost, await self._pipelined(lost), strict=True):
                answers[i] = answer
        return answers

    async def _pipelined(self, indices) -> list:
        commands = []
        for i in indices:
            script, keys, args = self.calls[i]
            commands.append(("EVALSHA", script.sha, len(keys), *keys, *args))
        return await exchange(self.client, commands, errors_as_answers=True)
