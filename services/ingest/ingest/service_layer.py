"""What ingest does for each request, between parsing (entrypoints) and the world (adapters).

Producer requests are checked in SPEC §2's order: the caller has already parsed the body
(400); then the partner key (401), the client secret (401), the rate limit of that key
(429: an authenticated request counts whether or not its fields are valid, as with
Braze), the fields (400), and only then is anything published.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohort_shared.paging import page
from cohort_shared.schemas import utc_now

from .adapters.key_store import KeyStore
from .adapters.publisher import Outgoing, Publisher, PublishFailed
from .adapters.rate_limiter import RateLimiter
from .domain import cohort_import as rules
from .domain.errors import NotFound, RateLimited, Unauthorized, Unavailable
from .domain.identity_requests import IdentityBody, parse_identity_body
from .domain.rest_api_keys import parse_rest_api_key_body, sorted_permissions
from .domain.workspace_keys import (
    DATA_IMPORT_KEYS,
    REST_API_KEYS,
    IssuedKey,
    KeyKind,
    KeyOwner,
    KeyRecord,
    check_workspace,
    issue_key,
)
from .settings import IngestSettings


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class IngestService:
    """The use cases of ingest, wired to a publisher, a key store and a rate limiter."""

    settings: IngestSettings
    publisher: Publisher
    keys: KeyStore
    rate_limiter: RateLimiter
    rest_keys: KeyStore
    clock: Callable[[], datetime] = utc_now
    partner_keys: dict[str, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.partner_keys = {p: k.get_secret_value().encode() for p, k in self.settings.partner_keys().items()}

    # ------------------------------------------------------------ producer API

    async def authorize_partner(self, partner: str, body: dict[str, Any]) -> KeyOwner:
        """Partner key, then client secret, then that key's rate limit."""
        expected, given = self.partner_keys.get(partner), body.get("partner_api_key")
        if expected is None or not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected):
            raise Unauthorized("Invalid Partner API key")
        owner = await self.keys.owner_of(body.get("client_secret"))
        if owner is None:
            raise Unauthorized("Invalid client secret")
        retry_after = await self.rate_limiter.retry_after(owner)
        if retry_after is not None:
            raise RateLimited(retry_after)
        await self.keys.mark_used(owner, self.clock())
        return owner

    async def name_cohort(self, owner: KeyOwner, partner: str, body: dict[str, Any]) -> None:
        naming = rules.parse_cohort_naming(body)
        message = rules.cohort_named(owner.workspace_id, partner, naming, self.clock())
        await self._publish((self.settings.topics.cohort_meta, message))

    async def import_cohort_changes(self, owner: KeyOwner, partner: str, body: dict[str, Any]) -> rules.CohortImport:
        changes = rules.parse_cohort_changes(body)
        outcome = rules.cohort_import(
            owner.workspace_id, partner, changes,
            cutoff=self.settings.retention_cutoff, request_id=new_request_id(), now=self.clock(),
        )
        topics = self.settings.topics
        messages: list[Outgoing] = [(topics.cohort_meta, outcome.received)]
        if outcome.accepted is not None:
            messages.append((topics.cohort_changes, outcome.accepted))
        await self._publish(*messages)
        return outcome

    # ------------------------------------------------------------ operator API

    async def request_identity_change(self, workspace_id: str, model: type[IdentityBody],
                                      body: dict[str, Any]) -> tuple[int, str]:
        """Publish one profile identity request; its entry count and request ID (under which
        identity-resolution reports the entries it skipped)."""
        check_workspace(workspace_id)
        return await self.publish_identity_request(workspace_id, parse_identity_body(model, body))

    async def publish_identity_request(self, workspace_id: str, request: IdentityBody) -> tuple[int, str]:
        """The one way a profile identity request reaches identity.events, from the operator
        API and the Braze REST API alike."""
        event = request.to_event(workspace_id, new_request_id(), self.clock())
        await self._publish((self.settings.topics.identity_events, event))
        return request.accepted_count(), event.request_id

    async def create_key(self, workspace_id: str) -> IssuedKey:
        check_workspace(workspace_id)
        issued = issue_key(self.clock())
        await self.keys.add(workspace_id, issued.record)
        return issued

    async def create_rest_key(self, workspace_id: str, body: dict[str, Any]) -> IssuedKey:
        check_workspace(workspace_id)
        wanted = parse_rest_api_key_body(body)
        issued = issue_key(self.clock(), REST_API_KEYS, wanted.name, sorted_permissions(wanted.permissions))
        await self.rest_keys.add(workspace_id, issued.record)
        return issued

    async def list_keys(self, workspace_id: str, cursor: str | None = None, limit: int | None = None,
                        kind: KeyKind = DATA_IMPORT_KEYS) -> tuple[list[KeyRecord], str | None]:
        """A page of the workspace's keys of `kind`, oldest first, and the next page's cursor."""
        records = await self._store(kind).all_in(check_workspace(workspace_id))
        listing = f"{'keys' if kind is DATA_IMPORT_KEYS else kind.name}:{workspace_id}"
        return page(records, lambda r: f"{r.created_at.isoformat()}|{r.key_id}", listing, cursor, limit)

    async def delete_key(self, workspace_id: str, key_id: str, kind: KeyKind = DATA_IMPORT_KEYS) -> None:
        if not await self._store(kind).delete(check_workspace(workspace_id), key_id):
            raise NotFound("key_id not found in this workspace")

    def _store(self, kind: KeyKind) -> KeyStore:
        return self.keys if kind is DATA_IMPORT_KEYS else self.rest_keys

    async def _publish(self, *messages: Outgoing) -> None:
        try:
            await self.publisher.publish(*messages)
        except PublishFailed:
            raise Unavailable("Kafka cannot take the write right now; nothing was acknowledged, retry later",
                              headers={"Retry-After": "1"}) from None
