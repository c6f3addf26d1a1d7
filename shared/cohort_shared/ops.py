"""What every service's HTTP side shares: `/healthz`, `/readyz`, `/metrics`, and the
operator-token check of SPEC §1."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from redis.exceptions import RedisClusterException, RedisError

from .faults import describe, redis_is_unavailable
from .paging import BadPage

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


def add_ops_routes(app: FastAPI, checks: dict[str, ReadinessCheck],
                   alive: Callable[[], bool] | None = None, details: Callable[[], dict] | None = None) -> None:
    """Mount `/healthz` (alive: the process does its work, `alive()` if given), `/readyz`
    (every named check passes) and `/metrics`. `details()` adds what an operator needs to
    see why (e.g. the stream processor's state) to both answers."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        ok = alive is None or alive()
        body = {"status": "ok" if ok else "dead", **(details() if details else {})}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        status = 200 if all(results.values()) else 503
        body = {"ready": status == 200, "checks": results, **(details() if details else {})}
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def admin_guard(token: SecretStr | None) -> Callable[[Request], None]:
    """A FastAPI dependency: `Authorization: Bearer $ADMIN_TOKEN`, and 401 to everyone when
    no token is configured."""
    expected = token.get_secret_value().encode() if token and token.get_secret_value() else None

    def require_admin(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if expected is None or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(status_code=401, detail="Invalid or missing operator token")

    return require_admin


def add_shared_error_handlers(app: FastAPI, what: str) -> None:
    """A bad `limit`/`cursor`: 400 naming it. Redis failing a request: 503 with
    `Retry-After` when it cannot serve right now (down, read-only after a failover, full,
    busy, loading, resharding), a logged 500 otherwise; the body names neither the address
    nor the key."""

    @app.exception_handler(BadPage)
    async def on_bad_page(request: Request, error: BadPage) -> JSONResponse:
        return JSONResponse({"message": str(error)}, status_code=400)

    # The cluster client's "cannot be connected" is no RedisError.
    @app.exception_handler(RedisError)
    @app.exception_handler(RedisClusterException)
    async def on_redis_error(request: Request, error: Exception) -> JSONResponse:
        if redis_is_unavailable(error):
            log.warning("Redis unavailable for %s %s: %s", request.method, request.url.path, describe(error))
            return JSONResponse({"message": f"{what} is unavailable right now; retry later"}, status_code=503,
                                headers={"Retry-After": "1"})
        log.exception("Redis refused %s %s", request.method, request.url.path)
        return JSONResponse({"message": "internal error"}, status_code=500)
