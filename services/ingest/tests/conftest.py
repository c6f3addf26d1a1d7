"""Unit-test fixtures: the real ingest app on an in-memory publisher, key store and rate limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from ingest.adapters.export_view import InMemoryExportView
from ingest.adapters.key_store import InMemoryKeyStore
from ingest.adapters.publisher import InMemoryPublisher
from ingest.adapters.rate_limiter import InMemoryRateLimiter
from ingest.app import create_app
from ingest.domain.rest_api_keys import PERMISSIONS
from ingest.settings import IngestSettings

PARTNER_KEY = "mp-partner-key"
ADMIN = {"Authorization": "Bearer unit-admin-token"}


def make_settings(**overrides) -> IngestSettings:
    values = dict(
        partner_api_keys=f"mixpanel={PARTNER_KEY},amplitude=amp-partner-key",
        admin_token="unit-admin-token", topic_prefix="unit.", port=8080,
    )
    values.update(overrides)
    return IngestSettings(**values)


@dataclass
class Harness:
    """The app, its in-memory adapters, and a client on it."""

    client: httpx.AsyncClient
    publisher: InMemoryPublisher
    keys: InMemoryKeyStore
    settings: IngestSettings
    rest_keys: InMemoryKeyStore
    export_view: InMemoryExportView

    async def new_rest_key(self, workspace: str = "acme", permissions: tuple[str, ...] = PERMISSIONS) -> str:
        response = await self.client.post(f"/workspaces/{workspace}/rest-api-keys", headers=ADMIN,
                                          json={"name": "backend", "permissions": list(permissions)})
        assert response.status_code == 201, response.text
        return response.json()["rest_api_key"]

    async def new_key(self, workspace: str = "acme") -> str:
        response = await self.client.post(f"/workspaces/{workspace}/data-import-keys", headers=ADMIN)
        assert response.status_code == 201, response.text
        return response.json()["data_import_key"]


async def make_harness(rate_limit: int = 1000, **overrides) -> tuple[Harness, httpx.AsyncClient]:
    settings = make_settings(**overrides)
    publisher, keys, rest_keys, view = InMemoryPublisher(), InMemoryKeyStore(), InMemoryKeyStore(), InMemoryExportView()
    app = create_app(settings, publisher=publisher, keys=keys, rate_limiter=InMemoryRateLimiter(rate_limit),
                     rest_keys=rest_keys, export_view=view, cohorts=view)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")
    return Harness(client, publisher, keys, settings, rest_keys, view), client


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h, client = await make_harness()
    async with client:
        yield h


@pytest.fixture
async def secret(harness: Harness) -> str:
    return await harness.new_key("acme")
