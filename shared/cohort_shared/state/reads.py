"""Plain reads sent together, answered in order: the hot reads of a batch (HMGETs of the
users it names, HGETs, GETs).

On one Redis server they go through `wire.exchange` (packed straight into the protocol on one
pooled connection; 3 µs a command against redis-py pipeline's 9). Only commands whose raw
reply is already their answer are allowed (`PLAIN`), so both paths answer alike. On a
cluster, redis-py's cluster pipeline routes each command to its shard and follows MOVED/ASK
as usual.
"""

from __future__ import annotations

from .client import is_cluster
from .wire import exchange

PLAIN = frozenset({"GET", "HGET", "HMGET"})  # MGET spans keys: a cluster pipeline refuses it


class ReadBatch:
    def __init__(self, client) -> None:
        self.client = client
        self.commands: list[tuple] = []

    def add(self, command: str, *args) -> None:
        if command not in PLAIN:
            raise ValueError(f"{command} is not a plain read")
        self.commands.append((command, *args))

    def hmget(self, key: str, fields: list) -> None:
        self.commands.append(("HMGET", key, *fields))  # `add` without its check: a batch queues thousands

    async def run(self) -> list:
        if not self.commands:
            return []
        if is_cluster(self.client):
            pipe = self.client.pipeline(transaction=False)
            for command in self.commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
        return await exchange(self.client, self.commands)


async def mget(client, keys: list[str]) -> list:
    """MGET of `keys`, all in one slot (one task's hash tag): packed by `wire.exchange` on one
    server (redis-py packing a few thousand keys was 7% of identity-resolution), redis-py's
    own on a cluster."""
    if not keys:
        return []
    if is_cluster(client):
        return list(await client.mget(keys))
    return (await exchange(client, [("MGET", *keys)]))[0]
