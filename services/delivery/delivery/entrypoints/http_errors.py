"""Every error as `{"message": "..."}`: ours, FastAPI's validation errors (400 naming the
field), Starlette's 404/405, Redis unable to serve (503 with Retry-After), a last resort."""

from __future__ import annotations

import logging

from cohort_shared.faults import describe, is_infrastructure
from cohort_shared.ops import add_shared_error_handlers
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.errors import RequestRejected

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestRejected)
    async def on_rejected(request: Request, error: RequestRejected) -> JSONResponse:
        return error_response(error.status, error.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return error_response(400, f"{field}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    add_shared_error_handlers(app, "the webhook store")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_infrastructure(error):
            log.warning("unavailable for %s %s: %s", request.method, request.url.path, describe(error))
            return error_response(503, "the webhook store is unavailable right now; retry later", {"Retry-After": "1"})
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")
