"""Wires settings, clients and the FastAPI app of ingest.

`create_app` takes its adapters as arguments so unit tests run the very same app on an
in-memory publisher, key stores, rate limiter and export view; left out, they are the real
Kafka and Redis, and the app also runs the export view's stream processor
(`entrypoints/export_stream.py`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cohort_shared.kafka import ensure_topics, partition_count
from cohort_shared.logs import RequestIds
from cohort_shared.openapi import install_openapi
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import probe_redis
from cohort_shared.serving import EXIT_PROCESSOR_DEAD, request_exit
from cohort_shared.state.client import connect_state
from cohort_shared.stream.engine import StreamProcessor
from cohort_shared.stream.repair_api import repair_router
from fastapi import Depends, FastAPI

from .adapters.cohort_reader import CohortReader, SegmentStoreCohorts
from .adapters.export_view import ExportReader, ExportViewStore
from .adapters.key_store import KeyStore, RedisKeyStore
from .adapters.publisher import KafkaPublisher, Publisher
from .adapters.rate_limiter import RateLimiter, RedisRateLimiter
from .braze_service_layer import BrazeRestService
from .domain.cohort_import import CohortChangesBody, CohortNamingBody
from .domain.identity_requests import IDENTITY_BODIES
from .domain.rest_api_keys import RestApiKeyBody
from .domain.workspace_keys import REST_API_KEYS
from .entrypoints import braze_api, operator_api, partner_api
from .entrypoints.export_stream import GROUP, export_view_service
from .entrypoints.http_errors import add_error_handlers
from .entrypoints.request_metrics import RequestMetrics
from .service_layer import IngestService
from .settings import IngestSettings

log = logging.getLogger("ingest")
REDIS_TIMEOUT_SECONDS = 2.0  # a request never waits longer on Redis; it gets a 503 instead


def create_app(
    settings: IngestSettings,
    *,
    publisher: Publisher | None = None,
    keys: KeyStore | None = None,
    rate_limiter: RateLimiter | None = None,
    rest_keys: KeyStore | None = None,
    export_view: ExportReader | None = None,
    cohorts: CohortReader | None = None,
) -> FastAPI:
    """The ingest app; adapters not given are the real ones (Kafka, Redis). Without an
    `export_view` given, the app also runs the export view's stream processor."""
    real = None in (keys, rate_limiter, rest_keys, export_view)
    cohort_reader = None if cohorts else SegmentStoreCohorts(
        settings.segment_store_url, settings.admin_token.get_secret_value() if settings.admin_token else "",
        settings.segment_store_timeout_seconds)
    cohorts = cohorts or cohort_reader
    # timeouts so a dead Redis means a 503, not a hang
    redis_client = connect_state(settings, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                 connect_timeout=REDIS_TIMEOUT_SECONDS) if real else None
    publisher = publisher or KafkaPublisher(settings, settings.publish_timeout_seconds)
    keys = keys or RedisKeyStore(redis_client, settings.redis_key_prefix)
    rest_keys = rest_keys or RedisKeyStore(redis_client, settings.redis_key_prefix, REST_API_KEYS)
    rate_limiter = rate_limiter or RedisRateLimiter(redis_client, settings.redis_key_prefix, settings.rate_limit_per_hour)
    processor = None
    if export_view is None:
        store = ExportViewStore(redis_client, settings.redis_key_prefix, settings.topic_partitions)
        export_view, processor = store, build_export_processor(settings, redis_client, store)
    service = IngestService(settings, publisher, keys, rate_limiter, rest_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if not service.partner_keys:
            log.warning("PARTNER_API_KEYS is not set: every partner request will get a 401")
        if settings.admin_token is None:
            log.warning("ADMIN_TOKEN is not set: the operator API answers 401 to everyone")
        await publisher.start()
        if processor is not None:
            await processor.start()
        try:
            yield
        finally:
            if processor is not None:
                await processor.stop()
            await publisher.stop()
            if cohort_reader is not None:
                await cohort_reader.aclose()
            if redis_client is not None:
                await redis_client.aclose()

    app = FastAPI(
        title="Cohort Import — ingest", version="1.0.0", lifespan=lifespan,
        description="Partner cohort import (Braze-style), data import keys, the profile identity API and the "
                    "Braze REST API (users/track, alias/new, identify, merge, delete, export/ids) with its REST API keys.",
    )
    app.state.ingest = service
    app.state.braze = BrazeRestService(service, rest_keys, export_view, cohorts)
    add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(partner_api.router)
    app.include_router(braze_api.router)
    app.include_router(operator_api.keys_router, dependencies=operator)
    app.include_router(operator_api.rest_keys_router, dependencies=operator)
    app.include_router(operator_api.identity_router, dependencies=operator)
    if processor is not None:
        app.include_router(repair_router(processor.divergences), dependencies=operator)
        processor.on_dead = lambda reason: request_exit(app, EXIT_PROCESSOR_DEAD)
    install_openapi(app, body_models=[CohortNamingBody, CohortChangesBody, RestApiKeyBody, *IDENTITY_BODIES.values(),
                                      *braze_api.BRAZE_BODIES],
                    public_prefixes=("/partners/", "/users/"))

    async def redis_ready() -> bool:
        return redis_client is None or await probe_redis(redis_client)

    # The export view's state is reported, not required: a view catching up must not take the
    # producer API out of a load balancer. Its loop dying ends the process (on_dead).
    add_ops_routes(app, {"kafka": publisher.ready, "redis": redis_ready},
                   alive=(lambda: processor.healthy) if processor else None,
                   details=(lambda: {"export_view": processor.status()}) if processor else None)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestIds)

    return app


def build_export_processor(settings: IngestSettings, client, store: ExportViewStore) -> StreamProcessor:
    """The export view's consumer, in its own group; before it consumes, the topics exist and
    the view's reads know how many tasks hold it."""

    async def prepare() -> None:
        await ensure_topics(settings, settings.topics.all())
        store.partitions = await partition_count(settings, settings.topics.identity_profiles)

    return StreamProcessor(
        settings, client, export_view_service(store), prepare=prepare, group_id=settings.group_id(GROUP),
        instance_id=settings.member_id(), max_records=settings.export_batch_records,
        max_restarts=settings.stream_max_restarts, restart_window_s=settings.stream_restart_window_seconds,
    )
