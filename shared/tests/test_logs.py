"""Log lines are JSON with the request's ID and trace ID; an answer names its request ID."""

from __future__ import annotations

import json
import logging

from cohort_shared.logs import JsonLines, RequestIds, route_of
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _app(lines: list[str]) -> FastAPI:
    app = FastAPI()
    log = logging.getLogger("test.logs")
    formatter = JsonLines("svc")

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record))

    log.handlers[:] = [Keep()]
    log.setLevel(logging.INFO)

    @app.get("/workspaces/{ws}/users/{user_ref}")
    async def lookup(request: Request, ws: str, user_ref: str) -> dict:
        log.warning("looked up on %s", route_of(request))
        return {}

    app.add_middleware(RequestIds)
    return app


def test_a_line_is_json_with_the_request_and_trace_ids_and_the_route_not_the_path() -> None:
    lines: list[str] = []
    client = TestClient(_app(lines))
    answer = client.get("/workspaces/acme/users/external_id:jane@example.com",
                        headers={"X-Request-ID": "req-1", "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    assert answer.headers["x-request-id"] == "req-1"
    (line,) = [json.loads(text) for text in lines]
    assert line["level"] == "WARNING" and line["service"] == "svc" and line["logger"] == "test.logs"
    assert (line["request_id"], line["trace_id"]) == ("req-1", TRACE)
    assert line["message"] == "looked up on /workspaces/{ws}/users/{user_ref}"
    assert "jane" not in lines[0]


def test_a_request_without_an_id_gets_one_and_a_bad_one_is_replaced() -> None:
    lines: list[str] = []
    client = TestClient(_app(lines))
    first = client.get("/workspaces/a/users/u").headers["x-request-id"]
    odd = client.get("/workspaces/a/users/u", headers={"X-Request-ID": "x\" y"}).headers["x-request-id"]
    assert len(first) == 32 and len(odd) == 32 and first != odd
    assert [json.loads(text)["request_id"] for text in lines] == [first, odd]
    assert all("trace_id" not in json.loads(text) for text in lines)


def test_outside_a_request_a_line_has_no_request_id() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    line = json.loads(JsonLines("svc").format(record))
    assert line["message"] == "boom now" and "request_id" not in line
