"""Wires settings, clients and the FastAPI app of ingest.

`create_app` takes its adapters as arguments so unit tests run the very same app on an
in-memory publisher, key store and rate limiter; left out, they are the real Kafka and Redis.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cohort_shared.openapi import document_request_bodies
from cohort_shared.ops import add_ops_routes, admin_guard
from cohort_shared.redis_store import probe_redis
from cohort_shared.state.client import connect_state
from fastapi import Depends, FastAPI

from .adapters.key_store import KeyStore, RedisKeyStore
from .adapters.publisher import KafkaPublisher, Publisher
from .adapters.rate_limiter import RateLimiter, RedisRateLimiter
from .domain.cohort_import import CohortChangesBody, CohortNamingBody
from .domain.identity_requests import IDENTITY_BODIES
from .entrypoints import operator_api, partner_api
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
) -> FastAPI:
    """The ingest app; adapters not given are the real ones (Kafka, Redis)."""
    # timeouts so a dead Redis means a 503, not a hang
    redis_client = connect_state(settings, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                 connect_timeout=REDIS_TIMEOUT_SECONDS) if keys is None or rate_limiter is None else None
    publisher = publisher or KafkaPublisher(settings, settings.publish_timeout_seconds)
    keys = keys or RedisKeyStore(redis_client, settings.redis_key_prefix)
    rate_limiter = rate_limiter or RedisRateLimiter(redis_client, settings.redis_key_prefix, settings.rate_limit_per_hour)
    service = IngestService(settings, publisher, keys, rate_limiter)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if not service.partner_keys:
            log.warning("PARTNER_API_KEYS is not set: every partner request will get a 401")
        if settings.admin_token is None:
            log.warning("ADMIN_TOKEN is not set: the operator API answers 401 to everyone")
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()
            if redis_client is not None:
                await redis_client.aclose()

    app = FastAPI(
        title="Cohort Import — ingest", version="1.0.0", lifespan=lifespan,
        description="Partner cohort import (Braze-style), data import keys and the profile identity API.",
    )
    app.state.ingest = service
    add_error_handlers(app)
    operator = [Depends(admin_guard(settings.admin_token))]
    app.include_router(partner_api.router)
    app.include_router(operator_api.keys_router, dependencies=operator)
    app.include_router(operator_api.identity_router, dependencies=operator)
    document_request_bodies(app, [CohortNamingBody, CohortChangesBody, *IDENTITY_BODIES.values()])

    async def redis_ready() -> bool:
        return redis_client is None or await probe_redis(redis_client)

    add_ops_routes(app, {"kafka": publisher.ready, "redis": redis_ready})
    app.add_middleware(RequestMetrics)

    return app
