"""Wires settings, clients and the FastAPI app of segment-store; the lifespan runs the change stream."""

from __future__ import annotations

import logging
import time
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
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from .adapters.store import Store
from .adapters.task_store import TaskStore
from .domain.filters import filter_json_schemas
from .entrypoints import operator_api
from .entrypoints.http_errors import add_error_handlers
from .entrypoints.stream import segment_service
from .service_layer import SegmentStoreService
from .settings import SegmentSettings

log = logging.getLogger("segment_store")
REDIS_TIMEOUT_SECONDS = 5.0
REQUESTS = Counter("segment_http_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram("segment_http_request_seconds", "HTTP request latency", ["route"])


def build_processor(settings: SegmentSettings, client, store: Store) -> StreamProcessor:
    """The consumer of segment-store's inputs, in the service's consumer group; before it
    consumes, the topics exist and the read side knows how many tasks hold the state."""

    async def prepare() -> None:
        await ensure_topics(settings, settings.topics.all())
        store.partitions = await partition_count(settings, settings.topics.membership_resolved)

    return StreamProcessor(
        settings, client, segment_service(settings, TaskStore(client, settings.redis_key_prefix)), prepare=prepare,
        group_id=settings.group, instance_id=settings.instance, max_records=settings.batch_max_records,
        max_batch_bytes=settings.batch_max_bytes,
        session_timeout_ms=settings.session_timeout_ms, max_restarts=settings.stream_max_restarts,
        restart_window_s=settings.stream_restart_window_seconds,
    )


def create_app(settings: SegmentSettings, *, run_stream: bool = True) -> FastAPI:
    """The segment-store app; with `run_stream` its lifespan also consumes the input topics."""
    client = connect_state(settings, socket_timeout=REDIS_TIMEOUT_SECONDS, connect_timeout=REDIS_TIMEOUT_SECONDS)
    store = Store(client, settings.redis_key_prefix, settings.topic_partitions, settings.segment_buckets_per_call)
    processor = build_processor(settings, client, store) if run_stream else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if processor is not None:
            await processor.start()
            log.info("consuming as %s.%s", settings.group, settings.instance)
        try:
            yield
        finally:
            if processor is not None:
                await processor.stop()
            await client.aclose()

    app = FastAPI(
        title="Cohort Import — segment-store", version="1.0.0", lifespan=lifespan,
        description="Cohort memberships, sync reports, segments and usage (operator API).",
    )
    app.state.segments = SegmentStoreService(store)
    add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(operator_api.router, dependencies=operator)
    install_openapi(app, schemas=filter_json_schemas())

    async def kafka_ready() -> bool:
        return processor is None or (processor.producer is not None and await probe_kafka(processor.producer))

    async def redis_ready() -> bool:
        return await probe_redis(client)

    async def processor_ready() -> bool:
        return processor is None or processor.ready

    if processor is not None:
        app.include_router(repair_router(processor.divergences), dependencies=operator)
        processor.on_dead = lambda reason: request_exit(app, EXIT_PROCESSOR_DEAD)
    add_ops_routes(app, {"kafka": kafka_ready, "redis": redis_ready, "processor": processor_ready},
                   alive=(lambda: processor.healthy) if processor else None,
                   details=(lambda: {"processor": processor.status()}) if processor else None)

    @app.middleware("http")
    async def measure(request: Request, call_next) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    app.add_middleware(RequestIds)
    return app
