"""The three services as separate processes on the real Kafka and Redis, for end-to-end tests.

Each test module gets its own topic prefix, Redis key prefix and free ports, so modules never
see each other's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cohort_shared.testing import PARTNER_KEYS, ServiceProcesses, eventually, unique


@pytest.fixture(scope="module")
def with_delivery() -> bool:
    """Whether a module's stack runs delivery too (override in the module: it costs a process)."""
    return False


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, redis_url: str, tmp_path_factory, with_delivery: bool) -> Iterator[ServiceProcesses]:
    test_id = unique("e")
    services = ServiceProcesses.configure(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "REDIS_URL": redis_url,
            "TOPIC_PREFIX": f"{test_id}.",
            "REDIS_KEY_PREFIX": f"{test_id}:",
            "TOPIC_PARTITIONS": "3",
            "IDENTITY_PARK_WINDOW_SECONDS": "3600",
        },
        tmp_path_factory.mktemp("e2e-logs"),
    )
    try:
        services.start_all(with_delivery=with_delivery)
        yield services
    finally:
        services.stop_all()


class Client:
    """One workspace's view of the running system."""

    def __init__(self, stack, workspace: str) -> None:
        self.stack, self.ws = stack, workspace
        self.http = httpx.AsyncClient(timeout=30)
        self.secret = ""

    async def admin(self, method: str, service: str, path: str, body: dict | None = None) -> httpx.Response:
        url = f"{self.stack.urls[service]}/workspaces/{self.ws}{path}"
        return await self.http.request(method, url, json=body, headers=self.stack.admin)

    async def new_key(self) -> dict:
        answer = await self.admin("POST", "ingest", "/data-import-keys")
        assert answer.status_code == 201, answer.text
        self.secret = answer.json()["data_import_key"]
        return answer.json()

    async def partner(self, path: str, body: dict, partner: str = "mixpanel", secret: str | None = None) -> httpx.Response:
        keys = {"partner_api_key": PARTNER_KEYS[partner], "client_secret": self.secret if secret is None else secret}
        return await self.http.post(f"{self.stack.urls['ingest']}/partners/{partner}{path}", json={**keys, **body})

    async def name_cohort(self, cohort_id: str, name: str) -> None:
        answer = await self.partner("/cohorts", {"cohort_id": cohort_id, "name": name,
                                                 "created_at": "2026-01-21T19:20:30+05:00"})
        assert answer.status_code == 202, answer.text

    async def change(self, cohort_id: str, *entries: dict) -> dict:
        answer = await self.partner("/cohorts/users", {"cohort_id": cohort_id, "cohort_changes": list(entries)})
        assert answer.status_code == 202, answer.text
        return answer.json()

    async def profiles(self, path: str, body: dict) -> None:
        answer = await self.admin("POST", "ingest", f"/users/{path}", body)
        assert answer.status_code == 202, answer.text

    async def identity(self, user_ref: str) -> httpx.Response:
        return await self.admin("GET", "identity_resolution", f"/identities/{user_ref}")

    async def cohort(self, cohort_id: str) -> dict:
        answer = await self.admin("GET", "segment_store", f"/cohorts/{cohort_id}")
        return answer.json() if answer.status_code == 200 else {"status": answer.status_code}

    async def members(self, cohort_id: str) -> set[str]:
        """Every member, page by page; first waits until segment-store knows the cohort (it
        consumes the cohort's name asynchronously, so right after naming it may answer 404)."""
        found, cursor = [], None
        while True:
            params = f"?limit=2{'&cursor=' + cursor if cursor else ''}"
            answer = await eventually(
                lambda p=params: self.admin("GET", "segment_store", f"/cohorts/{cohort_id}/members{p}"),
                until=lambda a: a.status_code != 404, timeout=30)
            page = answer.json()
            found += [m["external_id"] or m["user_id"] for m in page["members"]]
            cursor = page["next_cursor"]
            if cursor is None:
                assert len(found) == len(set(found)), "a member came back twice"
                return set(found)

    async def user_id(self, user_ref: str) -> str:
        answer = await eventually(lambda: self.identity(user_ref), until=lambda a: a.status_code == 200)
        return answer.json()["user_id"]

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
def workspace_client():
    """Makes a `Client` for a workspace of a running stack."""
    return Client
