"""A fake of the three services' HTTP APIs, shaped like SPEC §2-§4, served through
httpx.MockTransport: the CLI's own code runs unchanged, with no service and no network."""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cohort_cli.context import ClientHooks

ADMIN_TOKEN = "s3cret-admin-token"
PARTNER_KEY = "mp-partner-key-123"
DATA_IMPORT_KEY = "dik-abcdef-0123456789"


@dataclass
class Call:
    method: str
    host: str
    path: str
    body: Any
    headers: dict[str, str]
    raw_path: str = ""


@dataclass
class FakeServices:
    """Answers every SPEC route with a plausible body; `fail(path_pattern, *responses)` queues
    answers to give instead, in order, for matching requests."""

    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[re.Pattern[str], deque[httpx.Response]]] = field(default_factory=list)
    cohorts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fail(self, path_pattern: str, *responses: httpx.Response) -> None:
        self.failures.append((re.compile(path_pattern), deque(responses)))

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append(
            Call(
                request.method,
                request.url.host + f":{request.url.port}",
                path,
                body,
                dict(request.headers),
                request.url.raw_path.decode(),
            )
        )
        for pattern, queue in self.failures:
            if queue and pattern.search(path):
                return queue.popleft()
        if path.startswith("/partners/"):
            return self._partner(path, body)
        if request.headers.get("authorization") != f"Bearer {ADMIN_TOKEN}":
            return httpx.Response(401, json={"message": "Invalid or missing operator token"})
        if path.startswith("/admin/"):
            return self._admin(request.method, path, body)
        return self._operator(request.method, path, body, dict(request.url.params))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def hooks(self) -> ClientHooks:
        async def no_wait(seconds: float) -> None:
            self.calls.append(Call("SLEEP", "", "", seconds, {}))

        return ClientHooks(transport=self.transport(), sleep=no_wait)

    def partner_calls(self, suffix: str = "/cohorts/users") -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path.endswith(suffix)]

    def _partner(self, path: str, body: dict[str, Any]) -> httpx.Response:
        if body.get("partner_api_key") != PARTNER_KEY:
            return httpx.Response(401, json={"message": "Invalid Partner API key"})
        if body.get("client_secret") != DATA_IMPORT_KEY:
            return httpx.Response(401, json={"message": "Invalid client secret"})
        if path.endswith("/cohorts"):
            return httpx.Response(202, json={"message": "success"})
        identifiers = sum(
            len(e.get("user_ids", [])) + len(e.get("device_ids", [])) + len(e.get("aliases", []))
            for e in body["cohort_changes"]
        )
        if identifiers > 1000:
            return httpx.Response(400, json={"message": "cohort_changes carries more than 1,000 identifiers"})
        dropped = sum(
            len(e.get("user_ids", [])) + len(e.get("device_ids", [])) + len(e.get("aliases", []))
            for e in body["cohort_changes"]
            if e.get("timestamp", "9999") < "2010"
        )
        return httpx.Response(
            202, json={"message": "success", "accepted": identifiers - dropped, "dropped": {"pre_2010": dropped}}
        )

    def _admin(self, method: str, path: str, body: Any) -> httpx.Response:
        if method == "GET" and path == "/admin/divergences":
            return httpx.Response(200, json={"group": "segment-store", "divergences": [DIVERGENCE]})
        if method == "POST" and path == "/admin/divergences/repair":
            if body["partition"] != 4:
                return httpx.Response(404, json={"message": "no divergence recorded for that partition"})
            return httpx.Response(202, json={"message": "repair requested"})
        return httpx.Response(404, json={"message": f"no route {method} {path}"})

    def _operator(self, method: str, path: str, body: Any, query: dict[str, str] | None = None) -> httpx.Response:
        ws = path.split("/")[2]
        query = query or {}
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/segments$", lambda: _segments_page(query)),
            (
                "GET",
                r"/identity-requests/[0-9a-f]{32}$",
                lambda: httpx.Response(200, json={
                    "request_id": path.rsplit("/", 1)[1], "type": "alias_requested", "entries": 3, "skipped": 1,
                    "skipped_by_reason": {"unknown_external_id": 1},
                    "skipped_entries": [{"index": 2, "reason": "unknown_external_id"}],
                    "applied_at": "2026-01-21T10:00:00Z"}),
            ),
            ("GET", r"/identity-report$",
             lambda: httpx.Response(200, json={"skipped_by_reason": {"unknown_external_id": 7}})),
            (
                "POST",
                r"/data-import-keys$",
                lambda: httpx.Response(
                    201, json={"key_id": "k1", "data_import_key": "dik-new", "rest_endpoint": "http://127.0.0.1:8080"}
                ),
            ),
            (
                "GET",
                r"/data-import-keys$",
                lambda: httpx.Response(
                    200,
                    json={
                        "keys": [
                            {
                                "key_id": "k1",
                                "masked": "dik-…6789",
                                "created_at": "2026-01-21T10:00:00Z",
                                "last_used_at": None,
                            }
                        ]
                    },
                ),
            ),
            (
                "POST",
                r"/rest-api-keys$",
                lambda: httpx.Response(201, json={"key_id": "r1", "rest_api_key": "rak-new", "name": body["name"],
                                                  "permissions": body["permissions"],
                                                  "rest_endpoint": "http://127.0.0.1:8080"}),
            ),
            (
                "GET",
                r"/rest-api-keys$",
                lambda: httpx.Response(200, json={"keys": [{
                    "key_id": "r1", "name": "backend", "masked": "rak_…abcd", "permissions": ["users.track"],
                    "created_at": "2026-01-21T10:00:00Z", "last_used_at": "2026-01-21T11:00:00Z"}],
                    "next_cursor": None}),
            ),
            ("DELETE", r"/rest-api-keys/r1$", lambda: httpx.Response(204)),
            ("DELETE", r"/data-import-keys/k1$", lambda: httpx.Response(204)),
            ("DELETE", r"/data-import-keys/", lambda: httpx.Response(404, json={"message": "key_id not found"})),
            (
                "POST",
                r"/users/(track|alias/new|identify)$",
                lambda: httpx.Response(202, json={"message": "success", "accepted": _entries(body),
                                                  "request_id": f"{len(self.calls):032x}"}),
            ),
            (
                "GET",
                r"/users/.+/cohorts$",
                lambda: httpx.Response(
                    200,
                    json={
                        "user_id": "usr_9",
                        "cohorts": [{"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk"}],
                    },
                ),
            ),
            (
                "GET",
                r"/cohorts$",
                lambda: httpx.Response(
                    200,
                    json={
                        "cohorts": [
                            {
                                "partner": "mixpanel",
                                "cohort_id": "mp_1",
                                "name": "Churn risk",
                                "member_count": 1234,
                                "updated_at": "2026-01-21T10:00:00Z",
                            }
                        ]
                    },
                ),
            ),
            (
                "GET",
                r"/cohorts/mp_1$",
                lambda: httpx.Response(
                    200,
                    json={
                        "partner": "mixpanel",
                        "cohort_id": "mp_1",
                        "name": "Churn risk",
                        "member_count": 1234,
                        "updated_at": "2026-01-21T10:00:00Z",
                        "sync_report": {
                            "received": 1500,
                            "applied": 1234,
                            "already_in_state": 10,
                            "unmatched": {"unknown_external_id": 200, "device_id_of_identified_user": 6},
                            "dropped": {"pre_2010": 50},
                        },
                    },
                ),
            ),
            ("GET", r"/cohorts/", lambda: httpx.Response(404, json={"message": "cohort_id not found"})),
            ("POST", r"/segments$", lambda: _segment(body)),
            (
                "GET",
                r"/segments/seg1$",
                lambda: httpx.Response(
                    200,
                    json={
                        "segment_id": "seg1",
                        "name": "At risk",
                        "filter": {"Mixpanel_Cohorts": {"includes": ["mp_1"]}},
                        "size": 1234,
                    },
                ),
            ),
            (
                "GET",
                r"/identities/",
                lambda: httpx.Response(
                    200,
                    json={
                        "user_id": "usr_9",
                        "external_id": "u9",
                        "identified": True,
                        "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}],
                        "device_ids": ["d5"],
                        "custom_attributes": {"plan": "pro", "visits": 12},
                    },
                ),
            ),
        ]
        for route_method, pattern, answer in routes:
            if method == route_method and re.search(pattern, path):
                return answer()
        return httpx.Response(404, json={"message": f"no route {method} {path} in workspace {ws}"})


DIVERGENCE = {
    "group": "segment-store", "topic": "membership.resolved", "partition": 4, "kind": "redis_behind",
    "redis_applied": 10, "kafka_committed": 20, "detected_at": "2026-01-21T10:00:00Z",
    "description": "membership.resolved[4]: Kafka committed up to offset 20 but Redis applied only up to 10",
}


def _segments_page(query: dict[str, str]) -> httpx.Response:
    """Two pages, as a paged list answers (SPEC §6)."""
    if query.get("cursor") == "page-2":
        return httpx.Response(200, json={"segments": [
            {"segment_id": "seg2", "name": "Power", "filter": {"Mixpanel_Cohorts": {"includes": ["mp_2"]}}}],
            "next_cursor": None})
    return httpx.Response(200, json={"segments": [
        {"segment_id": "seg1", "name": "At risk", "filter": {"Mixpanel_Cohorts": {"includes": ["mp_1"]}}}],
        "next_cursor": "page-2"})


def _entries(body: dict[str, Any]) -> int:
    return sum(len(v) for v in body.values() if isinstance(v, list))


def _segment(body: dict[str, Any]) -> httpx.Response:
    if "Mixpanel_Cohorts" not in json.dumps(body["filter"]):
        return httpx.Response(400, json={"message": "filter: unknown partner cohorts key"})
    return httpx.Response(201, json={"segment_id": "seg1", **body})


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()
