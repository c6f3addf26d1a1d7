"""Wires settings, clients, the stream processor and the FastAPI app of identity-resolution."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cohort_shared.kafka import ensure_topics, partition_count, probe_kafka
from cohort_shared.logs import RequestIds
from cohort_shared.openapi import install_openapi
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import probe_redis
from cohort_shared.serving import EXIT_PROCESSOR_DEAD, request_exit
from cohort_shared.state.client import connect_state
from cohort_shared.stream.engine import StreamProcessor
from cohort_shared.stream.repair_api import repair_router
from fastapi import Depends, FastAPI

from .adapters.book_store import BookStore, ProfileFinder
from .entrypoints import http
from .entrypoints.stream import identity_service
from .settings import SERVICE, IdentitySettings

log = logging.getLogger(SERVICE)

# Longer than the slowest batch's reads; a timeout only makes the processor read the batch again.
REDIS_TIMEOUT_SECONDS = 30.0


def build_processor(settings: IdentitySettings, client, store: BookStore,
                    instance_id: str | None = None) -> StreamProcessor:
    """The consumer of identity.events, identity.forwarded and cohort.changes; before it
    consumes, the topics exist and the store knows how many partitions hold the books."""

    async def prepare() -> None:
        await ensure_topics(settings, settings.topics.all())
        store.partitions = await partition_count(settings, settings.topics.identity_events)

    return StreamProcessor(
        settings, client, identity_service(settings, store), prepare=prepare,
        group_id=settings.group_id(SERVICE),
        instance_id=instance_id or settings.member_id(),
        max_records=settings.max_batch_records,
        max_restarts=settings.stream_max_restarts,
        restart_window_s=settings.stream_restart_window_seconds,
    )


def create_app(settings: IdentitySettings) -> FastAPI:
    """The HTTP app; its lifespan creates the topics and runs the stream processor."""
    client = connect_state(settings, socket_timeout=REDIS_TIMEOUT_SECONDS)
    store = BookStore(client, settings.redis_key_prefix, settings.topic_partitions)
    processor = build_processor(settings, client, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting as %s with settings %s", settings.member_id(), settings.masked())
        if settings.admin_token is None:
            log.warning("ADMIN_TOKEN is not set: the operator API answers 401 to everyone")
        await processor.start()
        try:
            yield
        finally:
            await processor.stop()
            await client.aclose()

    app = FastAPI(title="Cohort Import — identity-resolution", version="1.0.0", lifespan=lifespan)
    app.state.store = store
    app.state.profiles = ProfileFinder(store)
    app.state.processor = processor
    http.add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(http.router, dependencies=operator)
    app.include_router(repair_router(processor.divergences), dependencies=operator)
    install_openapi(app)
    processor.on_dead = lambda reason: request_exit(app, EXIT_PROCESSOR_DEAD)

    async def kafka_ready() -> bool:
        return processor.producer is not None and await probe_kafka(processor.producer)

    async def redis_ready() -> bool:
        return await probe_redis(client)

    async def processor_ready() -> bool:
        return processor.ready

    add_ops_routes(app, {"kafka": kafka_ready, "redis": redis_ready, "processor": processor_ready},
                   alive=lambda: processor.healthy, details=lambda: {"processor": processor.status()})
    app.add_middleware(RequestIds)
    return app
