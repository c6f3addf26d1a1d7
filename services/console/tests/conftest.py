"""Unit-test fixtures: the real console app, its operator calls answered by a fake of the
services (an httpx transport) and an in-memory change feed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from console.adapters.change_feed import InMemoryChangeFeed
from console.adapters.operator_api import HttpOperatorApi
from console.app import create_app
from console.settings import ConsoleSettings

TOKEN = "unit-admin-token"
NOW = 1_800_000_000.0
COHORTS = [{"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk", "member_count": 3,
            "updated_at": "2026-11-29T22:00:00+00:00"}]


class FakeServices:
    """Answers as the services would; `routes` maps (service host, method, path) to an answer
    or a callable; everything else is a 404 as an unknown route. Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.unreachable: set[str] = set()
        self.routes: dict[tuple[str, str, str], object] = {
            ("ingest", "GET", "/workspaces/acme/data-import-keys"): {"keys": [
                {"key_id": "k1", "masked": "dik_…abcd", "created_at": "2026-11-29T20:00:00Z", "last_used_at": None}]},
            ("ingest", "POST", "/workspaces/acme/data-import-keys"): (201, {
                "key_id": "k2", "data_import_key": "dik_secret_value", "rest_endpoint": "https://ingest.example"}),
            ("segment", "GET", "/workspaces/acme/cohorts"): {"cohorts": COHORTS, "next_cursor": None},
            ("segment", "GET", "/workspaces/acme/usage"): {"data_points": 42},
            ("segment", "GET", "/workspaces/acme/usage/history"): {"hours": [
                {"hour": "2027-01-15T08:00:00Z", "data_points": 42}]},
            ("segment", "POST", "/workspaces/acme/segments/preview"): {"size": 3},
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        service = request.url.host
        self.calls.append((service, request.method, request.url.path))
        if service in self.unreachable:
            raise httpx.ConnectError("refused", request=request)
        answer = self.routes.get((service, request.method, request.url.path))
        if callable(answer):
            answer = answer(request)
        if answer is None:
            return httpx.Response(404, json={"message": "Not Found"})
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)


def make_settings(**overrides) -> ConsoleSettings:
    values = dict(admin_token=TOKEN, partner_api_keys="mixpanel=a,amplitude=b", default_workspace="acme",
                  ingest_url="http://ingest", identity_url="http://identity", segment_url="http://segment",
                  delivery_url="http://delivery")
    values.update(overrides)
    return ConsoleSettings(**values)


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def feed() -> InMemoryChangeFeed:
    return InMemoryChangeFeed()


@pytest.fixture
async def client(services: FakeServices, feed: InMemoryChangeFeed) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings()
    api = HttpOperatorApi(settings, transport=httpx.MockTransport(services.handler))
    app = create_app(settings, api=api, feed=feed, clock=lambda: NOW)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as c:
        yield c


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def sign_in(client: httpx.AsyncClient) -> Callable:
    async def signed_in(token: str = TOKEN) -> httpx.Response:
        form = await client.get("/signin")
        return await client.post("/signin", data={"token": token, "csrf_token": form_token(form.text)})

    return signed_in
