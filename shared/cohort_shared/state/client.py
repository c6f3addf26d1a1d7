"""A Redis client for what REDIS_URL names: one server, or a Redis Cluster (docs/operations.md).

`REDIS_CLUSTER` says which (`true` / `false`); `auto` (the default) asks the server once at
start-up (`INFO cluster`). Responses stay bytes; timeouts are bounded so a Redis that hangs
fails a call instead of hanging it. A connection found broken (a Redis restarted or failed
over closes every pooled one) is retried on a new one, a few times with back-off; a call that
times out is not retried here, as it may have been applied."""

from __future__ import annotations

import logging
import re

import redis
import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)


class BufferedReplies(Connection):
    """A connection that takes a reply already buffered without arming a timer.

    redis-py bounds every reply it reads by `socket_timeout` with an asyncio timeout, even
    the 999 replies of a 1,000-command pipeline that arrived with the first: scheduling and
    cancelling those timers was a tenth of segment-store's CPU (py-spy, README Performance).
    A reply the parser (hiredis, RESP2) holds whole is returned at once; any read that must
    wait for the socket goes through redis-py's own path, timeout included, so a Redis that
    hangs still fails the call."""

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, *,
                            disconnect_on_error: bool = True, push_request: bool = False):
        reader = getattr(self._parser, "_reader", None)
        if reader is not None and timeout is None and not push_request and getattr(self._parser, "_connected", False):
            reply = reader.gets(False) if disable_decoding else reader.gets()
            if reply is not NOT_ENOUGH_DATA:
                push = getattr(self._parser, "_hiredis_PushNotificationType", None)
                if push is not None and isinstance(reply, push):  # RESP3 out-of-band: as the parser does
                    await self._parser.handle_push_response(reply)
                    return await self.read_response(disable_decoding, timeout, disconnect_on_error=disconnect_on_error)
                if isinstance(reply, RedisConnectionError) or (
                        isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError)):
                    if disconnect_on_error:
                        await self.disconnect(nowait=True)
                    raise reply if isinstance(reply, RedisConnectionError) else reply[0]
                if isinstance(reply, ResponseError):
                    raise reply from None
                return reply
        return await super().read_response(disable_decoding, timeout, disconnect_on_error=disconnect_on_error,
                                           push_request=push_request)


def names_a_cluster(url: str, timeout: float = 2.0) -> bool | None:
    """Whether the server at `url` runs in cluster mode; None if it cannot be asked now."""
    probe = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return None
    finally:
        probe.close()


def connect_state(settings, *, socket_timeout: float, connect_timeout: float = 2.0):
    """A pooled client (cluster-aware when REDIS_URL names a cluster)."""
    url = settings.redis_url.get_secret_value()
    mode = settings.redis_cluster
    answer = names_a_cluster(url) if mode == "auto" else None
    cluster = mode == "true" or bool(answer)
    if mode == "auto" and answer is None:
        log.warning("Redis did not answer at start-up: taking it for a single server (set REDIS_CLUSTER=true "
                    "if REDIS_URL names a cluster)")
    options = {"decode_responses": False, "socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout,
               "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3,
                              supported_errors=(RedisConnectionError,))}
    if cluster:
        client = RedisCluster.from_url(url, **options)
        client.nodes_manager.connection_kwargs["connection_class"] = BufferedReplies  # nodes found later
        for node in client.nodes_manager.startup_nodes.values():
            node.connection_class = BufferedReplies
        return client
    return aioredis.from_url(url, connection_class=BufferedReplies, **options)


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


async def on_every_node(client, *command):
    """A server command (INFO, CONFIG SET …) on the one server, or on every node of a
    cluster: then a dict of answers by node."""
    if is_cluster(client):
        return await client.execute_command(*command, target_nodes=client.ALL_NODES)
    return await client.execute_command(*command)


async def server_info(client, section: str) -> list[dict]:
    """INFO `section` of each server (one, or every node of a cluster)."""
    answer = await on_every_node(client, "INFO", section)
    return list(answer.values()) if is_cluster(client) else [answer]


_GLOB = re.compile(r"([*?\[\]\\])")


async def keys_starting_with(client, prefix: str, count: int = 5000):
    """Every key that starts with `prefix`, glob characters in it taken literally (a SCAN
    MATCH; on a cluster, of every primary)."""
    async for key in client.scan_iter(match=_GLOB.sub(r"\\\1", prefix) + "*", count=count):
        yield key


async def used_memory(client) -> int:
    """Bytes Redis uses, every node of a cluster together."""
    return sum(node["used_memory"] for node in await server_info(client, "memory"))
