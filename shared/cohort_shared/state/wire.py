"""Commands sent together on one pooled connection of a single Redis server, packed straight
into the protocol and answered in order: the hot path's reads (`reads.ReadBatch`) and its
script calls (`lua_script.ScriptCalls`).

redis-py's pipeline spends about 9 µs of Python per queued command (options, callbacks) and
0.8 µs per argument packing it; a batch of segment-store sends a few commands per change and
a commit of thousands of arguments (README, Performance). Here a command costs its packing by
hiredis's C packer (0.07 µs per argument; the Python one it replaced, 0.19, was a tenth of
segment-store's CPU), and its reply is taken as the parser gives it: only commands whose raw
reply is their answer come here (GET, HGET, HMGET, EVALSHA).

A connection that breaks mid-exchange is dropped (replies could be left unread) and the
commands are sent again on a new one, a few times: callers send only commands that may run
twice (reads; scripts that find their own earlier run and change nothing). A reply that is an
error (NOSCRIPT, READONLY, OOM, a script's own) is raised as redis-py raises it, or with
`errors_as_answers` returned in its place while the other replies are read on.
"""

from __future__ import annotations

import asyncio

from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError

ATTEMPTS = 3
BACKOFF_S = 0.05


def pack(commands: list[tuple]) -> bytes:
    """The commands in the Redis protocol (RESP arrays of bulk strings), as redis-py packs them."""
    try:
        return b"".join([pack_command(args) for args in commands])
    except TypeError:  # an argument hiredis does not take: say which, as redis-py would
        for args in commands:
            for arg in args:
                if arg is None or isinstance(arg, bool) or not isinstance(arg, str | bytes | int | float):
                    raise DataError(f"invalid argument {arg!r}: convert it to bytes, a string or a number first") from None
        raise


async def exchange(client, commands: list[tuple], *, errors_as_answers: bool = False) -> list:
    """Send `commands` to `client`'s server together and read their replies in order."""
    if not commands:
        return []
    packed = pack(commands)
    for attempt in range(ATTEMPTS):
        try:
            return await _on_one_connection(client, packed, len(commands), errors_as_answers)
        except RedisConnectionError:
            if attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(BACKOFF_S * 2 ** attempt)
    raise AssertionError("unreachable")


async def _on_one_connection(client, packed: bytes, count: int, errors_as_answers: bool) -> list:
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(packed)
        if not errors_as_answers:
            return [await connection.read_response(disable_decoding=True) for _ in range(count)]
        replies: list = []
        for _ in range(count):
            try:
                replies.append(await connection.read_response(disable_decoding=True))
            except ResponseError as exc:  # this command's answer; the connection reads on
                replies.append(exc)
        return replies
    except BaseException:
        await connection.disconnect(nowait=True)  # replies may be left unread: never reuse it
        raise
    finally:
        await pool.release(connection)
