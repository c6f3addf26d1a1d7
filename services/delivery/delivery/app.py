"""Wires settings, clients, the faust app and the FastAPI app of delivery.

`create_app` takes its adapters as arguments so unit tests run the very same operator API
on in-memory ones without Kafka (`run_stream=False`); left out, they are Redis, HTTP and
the faust app consuming `membership.changes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from cohort_shared.faults import describe, is_infrastructure
from cohort_shared.kafka import ensure_topics, partition_count
from cohort_shared.openapi import install_openapi
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import probe_redis
from cohort_shared.serving import EXIT_PROCESSOR_DEAD, request_exit
from cohort_shared.state.client import connect_state
from cohort_shared.topics import dlq_name
from fastapi import Depends, FastAPI

from .adapters.definitions_cache import DefinitionsCache
from .adapters.destinations import check_destination as resolve_and_check
from .adapters.faust_app import build_faust_app
from .adapters.http_sender import HttpSender, Sender
from .adapters.queues import RedisDeliveryQueues
from .adapters.registry import RedisWebhookRegistry, WebhookRegistry
from .adapters.replay_reader import read_since
from .dispatch.dispatcher import Dispatcher
from .dispatch.sender import WebhookSender
from .domain.secret_box import SecretBox
from .domain.webhooks import CreateWebhookBody, ReplayBody, UpdateWebhookBody
from .entrypoints import operator_api
from .entrypoints.http_errors import add_error_handlers
from .entrypoints.stream import attach_agent
from .fanout import FanOut
from .metrics import watch_loop_lag
from .replay import make_replayer
from .service_layer import WebhookService
from .settings import DeliverySettings

log = logging.getLogger("delivery")
REDIS_TIMEOUT_SECONDS = 5.0
WATCH_SECONDS = 1.0


class Runtime:
    """What the stream side knows at run time: how many shards there are, whether start-up
    finished, and which shards faust assigned to this instance."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.shard_count = 0
        self.started = False
        self.faust_app = None

    def shards(self) -> int:
        return self.shard_count or 1

    def owned_shards(self) -> set[int]:
        if not self.started or self.faust_app is None:
            return set()
        return {tp.partition for tp in self.faust_app.consumer.assignment() if tp.topic == self.topic}


def create_app(settings: DeliverySettings, *, registry: WebhookRegistry | None = None, queues=None,
               sender: Sender | None = None, check_destination=None, run_stream: bool = True) -> FastAPI:
    """The delivery app; with `run_stream` its lifespan also starts faust and the dispatcher."""
    client = None
    if registry is None or queues is None:
        client = connect_state(settings, socket_timeout=REDIS_TIMEOUT_SECONDS, connect_timeout=REDIS_TIMEOUT_SECONDS)
    registry = registry or RedisWebhookRegistry(client, settings.redis_key_prefix)
    queues = queues or RedisDeliveryQueues(client, settings.redis_key_prefix, settings.attempts_kept)
    sender = sender or HttpSender(allow_private=settings.allow_private, timeout_seconds=settings.timeout_seconds)
    box = SecretBox(settings.key_bytes())
    topic = settings.topics.membership_changes
    runtime = Runtime(topic)
    replayer = make_replayer(partial(read_since, settings.kafka_bootstrap_servers, topic), queues, runtime.shards) \
        if run_stream else None
    service = WebhookService(settings, registry, queues, box, check_destination or resolve_and_check, replayer,
                             runtime.shards)
    fanout = FanOut(DefinitionsCache(client, settings.redis_key_prefix), queues, runtime.shards) if run_stream else None
    dispatcher = Dispatcher(
        queues, runtime.owned_shards,
        lambda target, token: WebhookSender(target, settings=settings, registry=registry, queues=queues,
                                            sender=sender, box=box, token=token),
        settings.poll_seconds, settings.instance) if run_stream else None
    tasks: dict[str, asyncio.Task] = {}

    async def start_stream() -> None:
        """Topics, scripts, then faust and the dispatcher; Kafka or Redis not there yet is waited for."""
        backoff = 0.2
        while True:
            try:
                await ensure_topics(settings, [topic, dlq_name(topic)])
                runtime.shard_count = await partition_count(settings, topic)
                await queues.prepare()
                break
            except Exception as error:
                if not is_infrastructure(error):
                    raise
                log.warning("waiting for Kafka and Redis at start-up: %s", describe(error))
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
        runtime.faust_app = build_faust_app(settings)
        attach_agent(runtime.faust_app, topic, fanout, batch_max=settings.batch_max_records,
                     batch_within=settings.batch_within_seconds)
        started_at = time.monotonic()
        await runtime.faust_app.start()
        runtime.started = True
        log.info("consuming %s (%d partitions) as %s; started in %.1f s", topic, runtime.shard_count,
                 settings.instance, time.monotonic() - started_at)
        tasks["dispatcher"] = asyncio.create_task(dispatcher.run())

    async def watch(app: FastAPI) -> None:
        """A stream side that cannot go on ends the process, so a supervisor restarts it."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if not alive():
                failed = [t.exception() for t in tasks.values() if t.done() and not t.cancelled() and t.exception()]
                reason = failed[0] if failed else (runtime.faust_app.crash_reason if runtime.faust_app else None)
                log.error("the stream side stopped; exiting with %d", EXIT_PROCESSOR_DEAD, exc_info=reason)
                request_exit(app, EXIT_PROCESSOR_DEAD)
                return

    def alive() -> bool:
        for task in tasks.values():
            if task.done() and (task.cancelled() or task.exception() is not None):
                return False
        faust_app = runtime.faust_app
        return not (faust_app is not None and runtime.started and faust_app.crash_reason is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if settings.admin_token is None:
            log.warning("ADMIN_TOKEN is not set: the operator API answers 401 to everyone")
        await sender.start()
        if run_stream:
            tasks["loop_lag"] = asyncio.create_task(watch_loop_lag())
            tasks["start"] = asyncio.create_task(start_stream())
            watcher = asyncio.create_task(watch(app))
        try:
            yield
        finally:
            if run_stream:
                watcher.cancel()
                for task in tasks.values():
                    task.cancel()
                if runtime.faust_app is not None and runtime.started:
                    await runtime.faust_app.stop()
            await sender.stop()
            if client is not None:
                await client.aclose()

    app = FastAPI(title="Cohort Import — delivery", version="1.0.0", lifespan=lifespan,
                  description="Signed webhooks (Standard Webhooks) for every membership change.")
    app.state.webhooks = service
    add_error_handlers(app)
    app.include_router(operator_api.router, dependencies=[Depends(admin_guard(settings.admin_token))])
    install_openapi(app, body_models=[CreateWebhookBody, UpdateWebhookBody, ReplayBody])

    async def redis_ready() -> bool:
        return client is None or await probe_redis(client)

    async def stream_ready() -> bool:
        if not run_stream:
            return True
        faust_app = runtime.faust_app
        return (runtime.started and not faust_app.rebalancing and not fanout.retrying and dispatcher.healthy)

    def details() -> dict:
        if not run_stream:
            return {}
        return {"stream": {"started": runtime.started, "partitions": sorted(runtime.owned_shards()),
                           "retrying": bool(fanout.retrying) or not dispatcher.healthy}}

    add_ops_routes(app, {"redis": redis_ready, "stream": stream_ready}, alive=alive, details=details)
    return app


