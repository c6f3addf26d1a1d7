"""The ingest producer API (docs/producer-api.md) as two calls, both keys in the body as Braze has them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..backoff import RetryPolicy
from ..http_client import Sent, Sleep, send_with_retries


@dataclass(frozen=True)
class PartnerCredentials:
    partner: str
    partner_api_key: str
    data_import_key: str


class PartnerApi:
    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: PartnerCredentials,
        policy: RetryPolicy,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client, self.credentials, self.policy, self.sleep = client, credentials, policy, sleep
        self.base_path = f"/partners/{quote(credentials.partner, safe='')}/cohorts"

    def _body(self, cohort_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "partner_api_key": self.credentials.partner_api_key,
            "client_secret": self.credentials.data_import_key,
            "cohort_id": cohort_id,
            **fields,
        }

    async def name_cohort(self, cohort_id: str, name: str, created_at: datetime) -> Sent:
        """Create or rename the cohort."""
        body = self._body(cohort_id, name=name, created_at=created_at.isoformat())
        return await send_with_retries(self.client, "POST", self.base_path, body, self.policy, self.sleep)

    async def send_changes(self, cohort_id: str, entries: list[dict[str, Any]]) -> Sent:
        """Add or remove members; the answer counts accepted and dropped identifiers."""
        return await send_with_retries(
            self.client,
            "POST",
            f"{self.base_path}/users",
            self._body(cohort_id, cohort_changes=entries),
            self.policy,
            self.sleep,
        )
