"""Every error as `{"message": "..."}` (SPEC §2): ours, FastAPI's validation errors (400,
not FastAPI's 422 shape), Starlette's 404/405, Redis unable to serve (503), and a last resort."""

from __future__ import annotations

import logging

from cohort_shared.ops import add_shared_error_handlers
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.errors import RequestRejected, describe_validation_error

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   details: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": message, **(details or {})}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestRejected)
    async def on_rejected(request: Request, error: RequestRejected) -> JSONResponse:
        return error_response(error.status, error.message, error.headers, error.details)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, describe_validation_error(error.errors(), strip_loc_prefix=True))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), getattr(error, "headers", None))

    add_shared_error_handlers(app, "the key store")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")
