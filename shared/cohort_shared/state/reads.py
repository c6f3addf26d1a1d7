"""Plain reads sent together, answered in order: the hot reads of a batch (HMGETs of the
users it names, HGETs, GETs).

On one Redis server the commands are packed straight into the protocol and sent on one pooled
connection: redis-py's pipeline spends about 9 µs of Python per queued command (options,
callbacks, packing) against 3 µs here (bench: 3,000 HMGETs; README, Performance), and a
batch of segment-store queues three per change. Only commands whose raw reply is already
their answer are allowed (`PLAIN`), so both paths answer alike. On a cluster, redis-py's
cluster pipeline routes each command to its shard and follows MOVED/ASK as usual.

A connection that failed mid-batch is dropped (its replies could be out of step) and the
reads are sent again on a new one, a few times (reads change nothing); a reply that is an
error (LOADING, a timeout) is raised as redis-py raises it.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from .client import is_cluster

PLAIN = frozenset({"GET", "HGET", "HMGET"})  # MGET spans keys: a cluster pipeline refuses it
ATTEMPTS = 3
BACKOFF_S = 0.05


def pack(commands: list[tuple]) -> bytes:
    """The commands in the Redis protocol (RESP arrays of bulk strings). Written for speed (a
    batch packs a few arguments per change): str first, no formatting of the payload."""
    out: list[bytes] = []
    add = out.append
    for args in commands:
        add(b"*%d\r\n" % len(args))
        for arg in args:
            raw = arg.encode() if type(arg) is str else arg if isinstance(arg, bytes) else str(arg).encode()
            add(b"$%d\r\n" % len(raw))
            add(raw)
            add(b"\r\n")
    return b"".join(out)


class ReadBatch:
    def __init__(self, client) -> None:
        self.client = client
        self.commands: list[tuple] = []

    def add(self, command: str, *args) -> None:
        if command not in PLAIN:
            raise ValueError(f"{command} is not a plain read")
        self.commands.append((command, *args))

    def hmget(self, key: str, fields: list) -> None:
        self.add("HMGET", key, *fields)

    async def run(self) -> list:
        if not self.commands:
            return []
        if is_cluster(self.client):
            pipe = self.client.pipeline(transaction=False)
            for command in self.commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
        packed = pack(self.commands)
        for attempt in range(ATTEMPTS):
            try:
                return await self._on_one_connection(packed)
            except RedisConnectionError:
                if attempt == ATTEMPTS - 1:
                    raise
                await asyncio.sleep(BACKOFF_S * 2 ** attempt)
        raise AssertionError("unreachable")

    async def _on_one_connection(self, packed: bytes) -> list:
        pool = self.client.connection_pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed)
            return [await connection.read_response(disable_decoding=True) for _ in self.commands]
        except BaseException:
            await connection.disconnect(nowait=True)  # replies may be left unread: never reuse it
            raise
        finally:
            await pool.release(connection)
