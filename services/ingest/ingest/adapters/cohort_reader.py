"""The cohorts each exported user is in, read from segment-store, which owns membership.

`/users/export/ids` shows a profile's cohorts. segment-store keeps every profile's cohorts
already (`GET /workspaces/{ws}/users/{user_ref}/cohorts`, docs/segment-store.md), so the export
asks it at read time instead of ingest following membership.changes into a third copy of
every membership: an export is rare and small (at most ~100 users, 2,500 a minute), a
membership change is the pipeline's hottest record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote

import httpx

from ..domain.errors import Unavailable

CONCURRENT_READS = 8
RETRY = {"Retry-After": "1"}


class CohortReader(Protocol):
    async def cohorts_of(self, ws: str, user_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
        """Each user's cohorts as [{partner, cohort_id, name}], sorted; a user segment-store does
        not know is in none."""
        ...


class SegmentStoreCohorts:
    """segment-store's operator API over HTTP, with the operator token; no answer, a timeout or
    a 5xx is an `Unavailable` (503): the export cannot say which cohorts a user is in."""

    def __init__(self, base_url: str, admin_token: str, timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.client = httpx.AsyncClient(transport=transport, timeout=timeout_s, follow_redirects=False,
                                        headers={"Authorization": f"Bearer {admin_token}"})
        self.limit = asyncio.Semaphore(CONCURRENT_READS)

    async def cohorts_of(self, ws: str, user_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
        users = sorted(set(user_ids))
        answers = await asyncio.gather(*(self._one(ws, u) for u in users))
        return dict(zip(users, answers, strict=True))

    async def _one(self, ws: str, user_id: str) -> list[dict[str, str]]:
        path = f"{self.base}/workspaces/{quote(ws, safe='')}/users/{quote(user_id, safe='')}/cohorts"
        async with self.limit:
            try:
                answer = await self.client.get(path)
            except httpx.HTTPError as error:
                raise Unavailable(f"segment-store did not answer ({type(error).__name__}); retry later",
                                  headers=RETRY) from None
        if answer.status_code == 404:
            return []
        if answer.status_code != 200:
            raise Unavailable(f"segment-store answered {answer.status_code}; retry later", headers=RETRY)
        return [{"partner": c["partner"], "cohort_id": c["cohort_id"], "name": c["name"]}
                for c in answer.json()["cohorts"]]

    async def aclose(self) -> None:
        await self.client.aclose()
