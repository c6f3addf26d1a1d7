"""Wires settings, clients and the FastAPI app of segment-store; the lifespan runs the change stream."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from cohort_shared.kafka import ensure_topics, probe_kafka
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import probe_redis
from cohort_shared.serving import EXIT_PROCESSOR_DEAD, request_exit
from cohort_shared.stream.repair_api import repair_router
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from .adapters.change_stream import ChangeStream
from .adapters.scripts import Scripts
from .adapters.store import Store
from .entrypoints import operator_api
from .entrypoints.http_errors import add_error_handlers
from .service_layer import SegmentStoreService
from .settings import SegmentSettings

log = logging.getLogger("segment_store")
REDIS_TIMEOUT_SECONDS = 5.0
REQUESTS = Counter("segment_http_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram("segment_http_request_seconds", "HTTP request latency", ["route"])


def connect_redis(settings: SegmentSettings) -> aioredis.Redis:
    """Like cohort_shared.redis_store.connect, with timeouts so a dead Redis means a 503, not a hang."""
    return aioredis.from_url(
        settings.redis_url.get_secret_value(), decode_responses=False,
        socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def create_app(settings: SegmentSettings, *, run_stream: bool = True) -> FastAPI:
    """The segment-store app; with `run_stream` its lifespan also consumes the input topics."""
    client = connect_redis(settings)
    scripts = Scripts(client)
    stream = ChangeStream(settings, client, scripts) if run_stream else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if stream is not None:
            await ensure_topics(settings, settings.topics.all())
            await stream.processor.start()
            log.info("consuming as %s.%s", settings.group, settings.instance)
        try:
            yield
        finally:
            if stream is not None:
                await stream.processor.stop()
            await client.aclose()

    app = FastAPI(
        title="Cohort Import — segment-store", version="1.0.0", lifespan=lifespan,
        description="Cohort memberships, sync reports, segments and usage (operator API).",
    )
    app.state.segments = SegmentStoreService(Store(client, scripts, settings.redis_key_prefix,
                                                   settings.segment_buckets_per_call))
    add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(operator_api.router, dependencies=operator)

    async def kafka_ready() -> bool:
        if stream is None:
            return True
        processor = stream.processor
        return processor.producer is not None and await probe_kafka(processor.producer)

    async def redis_ready() -> bool:
        return await probe_redis(client)

    async def processor_ready() -> bool:
        return stream is None or stream.processor.ready

    if stream is not None:
        app.include_router(repair_router(stream.processor.ledger), dependencies=operator)
        stream.processor.on_dead = lambda reason: request_exit(app, EXIT_PROCESSOR_DEAD)
    add_ops_routes(app, {"kafka": kafka_ready, "redis": redis_ready, "processor": processor_ready},
                   alive=(lambda: stream.processor.healthy) if stream else None,
                   details=(lambda: {"processor": stream.processor.status()}) if stream else None)

    @app.middleware("http")
    async def measure(request: Request, call_next) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        REQUESTS.labels(route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    return app
