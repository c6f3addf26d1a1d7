"""Wires settings, clients, the stream processor and the FastAPI app of identity-resolution."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from cohort_shared.kafka import ensure_topics, probe_kafka
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import KeySpace, probe_redis
from cohort_shared.serving import EXIT_PROCESSOR_DEAD, request_exit
from cohort_shared.stream.processor import TransactionalProcessor
from cohort_shared.stream.repair_api import repair_router
from fastapi import Depends, FastAPI

from .adapters.identity_script import IdentityScript
from .adapters.profile_reader import ProfileReader
from .adapters.reports import RequestReports
from .entrypoints import http
from .entrypoints.stream import SERVICE, input_topics, make_handler
from .settings import IdentitySettings

log = logging.getLogger(SERVICE)

# Longer than the slowest batch (a pipeline of IDENTITY_MAX_BATCH_RECORDS calls of 1,000
# identifiers each); a timeout only makes the processor read the batch again.
REDIS_TIMEOUT_SECONDS = 30.0


def connect_redis(settings: IdentitySettings) -> aioredis.Redis:
    return aioredis.from_url(
        settings.redis_url.get_secret_value(),
        decode_responses=False,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=2.0,
    )


def build_processor(
    settings: IdentitySettings, client: aioredis.Redis, instance_id: str | None = None
) -> TransactionalProcessor:
    """The consumer of identity.events and cohort.changes, in the service's consumer group."""
    keys = KeySpace(settings.redis_key_prefix, SERVICE)
    return TransactionalProcessor(
        settings,
        client,
        service=SERVICE,
        group_id=settings.group_id(SERVICE),
        topics=input_topics(settings),
        handler=make_handler(settings, client, IdentityScript(client, keys)),
        instance_id=instance_id or settings.member_id(),
        max_records=settings.max_batch_records,
        max_restarts=settings.stream_max_restarts,
        restart_window_s=settings.stream_restart_window_seconds,
    )


def create_app(settings: IdentitySettings) -> FastAPI:
    """The HTTP app; its lifespan creates the topics and runs the stream processor."""
    client = connect_redis(settings)
    processor = build_processor(settings, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting as %s with settings %s", settings.member_id(), settings.masked())
        if settings.admin_token is None:
            log.warning("ADMIN_TOKEN is not set: the operator API answers 401 to everyone")
        await ensure_topics(settings, settings.topics.all())
        await processor.start()
        try:
            yield
        finally:
            await processor.stop()
            await client.aclose()

    app = FastAPI(title="Cohort Import — identity-resolution", version="1.0.0", lifespan=lifespan)
    app.state.profiles = ProfileReader(client, KeySpace(settings.redis_key_prefix, SERVICE))
    app.state.reports = RequestReports(client, KeySpace(settings.redis_key_prefix, SERVICE))
    app.state.processor = processor
    http.add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(http.router, dependencies=operator)
    app.include_router(repair_router(processor.ledger), dependencies=operator)
    processor.on_dead = lambda reason: request_exit(app, EXIT_PROCESSOR_DEAD)

    async def kafka_ready() -> bool:
        return processor.producer is not None and await probe_kafka(processor.producer)

    async def redis_ready() -> bool:
        return await probe_redis(client)

    async def processor_ready() -> bool:
        return processor.ready

    add_ops_routes(app, {"kafka": kafka_ready, "redis": redis_ready, "processor": processor_ready},
                   alive=lambda: processor.healthy, details=lambda: {"processor": processor.status()})
    return app
