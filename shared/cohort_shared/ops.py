"""What every service's HTTP side shares: `/healthz`, `/readyz`, `/metrics`, and the
operator-token check of SPEC §1."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

ReadinessCheck = Callable[[], Awaitable[bool]]


def add_ops_routes(app: FastAPI, checks: dict[str, ReadinessCheck]) -> None:
    """Mount `/healthz` (alive), `/readyz` (every named check passes) and `/metrics`."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        status = 200 if all(results.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": results}, status_code=status)

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
