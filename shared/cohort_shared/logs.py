"""Logging set-up shared by the services: one JSON object a line, level from settings.

Each line carries `ts`, `level`, `service`, `logger` and `message`, and, while an HTTP request
is being served, its `request_id` (the caller's `X-Request-ID`, else a new one, answered in
the same header) and `trace_id` (from a W3C `traceparent` header, when the caller sends one).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("trace_id", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else is replaced, never logged


class JsonLines(logging.Formatter):
    """A log record as one line of JSON."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", REQUEST_ID), ("trace_id", TRACE_ID)):
            if (value := var.get()) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, service: str) -> logging.Logger:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through the root handler, as JSON
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    return logging.getLogger(service)


def route_of(request) -> str:
    """The route template a request matched (`/workspaces/{ws}/users/{user_ref}/cohorts`), for
    logs: its path may hold identifiers, which are personal data."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route)"


class RequestIds:
    """ASGI middleware: the request's ID and trace ID in every log line written while it is
    served, and `X-Request-ID` in the answer."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        trace = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
        request_token = REQUEST_ID.set(request_id)
        trace_token = TRACE_ID.set(trace.group(1) if trace else None)

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(request_token)
            TRACE_ID.reset(trace_token)
