"""What ingest does for a Braze REST request (docs/braze-rest.md), between parsing and the world.

Checks in Braze's order: the key (401: missing or unknown), its permission for the endpoint
(403), the workspace's rate limit for the endpoint's group (429, with `X-RateLimit-*`), then
the body (400). Identity effects are published by `IngestService.publish_identity_request`,
the very path of the operator profile identity API; exports read the export view (profiles)
and segment-store (their cohorts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from cohort_shared.schemas import utc_now

from .adapters.cohort_reader import CohortReader
from .adapters.export_view import ExportReader
from .adapters.key_store import KeyStore
from .domain.braze_export import ExportBody, exported_user, parse_export
from .domain.braze_requests import BrazeRequest
from .domain.errors import Forbidden, RateLimited, RequestRejected, Unauthorized
from .domain.export_view import SEP
from .domain.rate_limit import Quota
from .domain.rest_api_keys import RATE_GROUPS, permission_of
from .domain.workspace_keys import KeyOwner
from .service_layer import IngestService


@dataclass(frozen=True)
class BrazeCall:
    """An authorised Braze REST request: whose it is, and what is left of its rate limit."""

    owner: KeyOwner
    quota: Quota

    @contextmanager
    def answering(self) -> Iterator[None]:
        """A refusal once the key was accepted carries the X-RateLimit-* headers too, as Braze's do."""
        try:
            yield
        except RequestRejected as refusal:
            refusal.headers = {**self.quota.headers(), **refusal.headers}
            raise


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class BrazeRestService:
    """The Braze REST API's use cases, on the ingest service's keys, limiter and publisher."""

    ingest: IngestService
    rest_keys: KeyStore
    export_view: ExportReader
    cohorts: CohortReader
    clock: Callable = utc_now

    async def authorize(self, authorization: str | None, path: str) -> BrazeCall:
        """Key (401), permission (403), rate limit (429); the key's last use is recorded."""
        owner = await self.rest_keys.owner_of(bearer_token(authorization))
        if owner is None:
            raise Unauthorized("Invalid API key: send Authorization: Bearer <REST API key>")
        permission = permission_of(path)
        if permission not in owner.permissions:
            raise Forbidden(f"This API key does not have the {permission} permission")
        group = RATE_GROUPS[permission]
        quota = await self.ingest.rate_limiter.take(owner.workspace_id, f"rest:{group}",
                                                    self.ingest.settings.rest_limits()[group])
        if quota.retry_after is not None:
            raise RateLimited(quota.retry_after, f"Rate limit of {group} exceeded for this workspace; retry later",
                              headers=quota.headers())
        await self.rest_keys.mark_used(owner, self.clock())
        return BrazeCall(owner, quota)

    async def apply(self, call: BrazeCall, parsed: BrazeRequest) -> dict[str, Any]:
        """Publish the valid objects; Braze's answer: success, its counts, and any errors."""
        await self.ingest.publish_identity_request(call.owner.workspace_id, parsed.body)
        answer: dict[str, Any] = {"message": "success", **parsed.counts}
        if parsed.errors:
            answer["errors"] = [e.as_json() for e in parsed.errors]
        return answer

    async def export(self, call: BrazeCall, body: dict[str, Any]) -> dict[str, Any]:
        request = parse_export(body)
        ws = call.owner.workspace_id
        wanted = _wanted(request)
        candidates = {name: await self.export_view.holders(ws, name) for name, *_ in wanted}
        braze_ids = [request.braze_id] if request.braze_id else []
        profiles = await self.export_view.profiles(ws, {u for found in candidates.values() for u in found} | set(braze_ids))
        users, invalid = [], []
        for name, kind, value, label in wanted:
            # The index is eventually consistent with the profiles: a profile is shown only if it holds the identifier.
            found = sorted(u for u in candidates[name] if u in profiles and profiles[u].holds(kind, value, label))
            users += found
            if not found and kind == "external_id":
                invalid.append(value)
        for braze_id in braze_ids:
            if braze_id in profiles:
                users.append(braze_id)
            else:
                invalid.append(braze_id)
        ordered = list(dict.fromkeys(users))
        if request.fields_to_export is None or "cohorts" in request.fields_to_export:
            cohorts = await self.cohorts.cohorts_of(ws, ordered)
            profiles = {u: replace(profiles[u], cohorts=cohorts.get(u, [])) for u in ordered}
        return {"message": "success", "users": [exported_user(profiles[u], request.fields_to_export) for u in ordered],
                "invalid_user_ids": invalid}


def _wanted(request: ExportBody) -> list[tuple[str, str, str, str | None]]:
    """(index field, identifier kind, value, alias label) of every selector but braze_id."""
    wanted = [(f"x{SEP}{v}", "external_id", v, None) for v in request.external_ids]
    wanted += [(f"a{SEP}{a.alias_label}{SEP}{a.alias_name}", "alias", a.alias_name, a.alias_label)
               for a in request.user_aliases]
    if request.device_id:
        wanted.append((f"d{SEP}{request.device_id}", "device_id", request.device_id, None))
    if request.email_address:
        wanted.append((f"e{SEP}{request.email_address.lower()}", "email", request.email_address, None))
    if request.phone:
        wanted.append((f"p{SEP}{request.phone}", "phone", request.phone, None))
    return wanted
