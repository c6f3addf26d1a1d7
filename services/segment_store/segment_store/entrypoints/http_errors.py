"""Every error as `{"message": "..."}`: refusals from the domain, FastAPI's validation errors
(400, not FastAPI's 422 shape), Starlette's 404/405, Redis unable to serve (503), a last resort."""

from __future__ import annotations

import logging

from cohort_shared.logs import route_of
from cohort_shared.openapi import error_headers
from cohort_shared.ops import add_shared_error_handlers
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.errors import Refused

log = logging.getLogger(__name__)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def describe(errors: list[dict]) -> str:
    """`limit must be an integer`: the field's name, then what is wrong, from pydantic's first error."""
    first = errors[0] if errors else {}
    field = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
    return f"{field}: {first.get('msg', 'is invalid')}"


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def on_refused(request: Request, error: Refused) -> JSONResponse:
        return error_response(error.status, error.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, describe(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = error_headers(request, error.status_code, getattr(error, "headers", None))
        return error_response(error.status_code, str(error.detail), headers)

    add_shared_error_handlers(app, "the segment store")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, route_of(request))
        return error_response(500, "internal error")
