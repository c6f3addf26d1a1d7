"""The services' operator APIs, called over HTTP like any client would, with the admin token.

Every failure becomes one of three errors a page can show: `Unreachable` (no answer, a
timeout, a 5xx), `NotAvailable` (the API is not there: a service not deployed, or one
without that API yet, as the optional REST API keys and webhooks), `Refused` (a 4xx with
the service's own message, such as an invalid filter or an unknown user).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

from ..settings import ConsoleSettings

MAX_LISTED = 1000  # list endpoints' largest page; the console shows at most one of each


class UpstreamError(Exception):
    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service, self.message, self.status = service, message, status


class Unreachable(UpstreamError):
    """The service did not answer usefully (down, slow, or a 5xx)."""


class NotAvailable(UpstreamError):
    """The service or this API of it is not deployed here."""


class Refused(UpstreamError):
    """The service refused the request, saying why (a 4xx)."""


def _seg(value: str) -> str:
    return quote(value, safe="")


class OperatorApi(Protocol):
    """What the console asks of the services; one method per operator call it makes."""

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict | None = None, optional: bool = False) -> Any: ...

    async def aclose(self) -> None: ...


class HttpOperatorApi:
    """The operator APIs over HTTP; `transport` lets tests answer in place of the services."""

    def __init__(self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        self.bases = {
            "ingest": settings.ingest_url.rstrip("/"),
            "identity-resolution": settings.identity_url.rstrip("/"),
            "segment-store": settings.segment_url.rstrip("/"),
            "delivery": settings.delivery_url.rstrip("/"),
        }
        self.client = httpx.AsyncClient(
            transport=transport, timeout=settings.upstream_timeout_seconds,
            headers={"Authorization": f"Bearer {token}"}, follow_redirects=False,
        )

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict | None = None, optional: bool = False) -> Any:
        """The JSON answer of one operator call (None for a 204). `optional`: a 404 means the
        API is not there (NotAvailable) rather than that the thing asked for is missing."""
        try:
            answer = await self.client.request(method, self.bases[service] + path, json=json, params=params)
        except httpx.HTTPError as error:
            if optional:
                raise NotAvailable(service, "not reachable") from error
            raise Unreachable(service, f"no answer ({type(error).__name__})") from error
        if answer.status_code == 204:
            return None
        message = _message(answer)
        if answer.status_code >= 500:
            raise Unreachable(service, message, answer.status_code)
        if optional and answer.status_code in (404, 405):
            raise NotAvailable(service, "this API is not available", answer.status_code)
        if answer.status_code >= 400:
            raise Refused(service, message, answer.status_code)
        return answer.json()

    async def aclose(self) -> None:
        await self.client.aclose()


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}"
    return str(body.get("message", f"HTTP {answer.status_code}")) if isinstance(body, dict) else "unexpected answer"


class Workspace:
    """One workspace's operator calls, named for what they do."""

    def __init__(self, api: OperatorApi, ws: str) -> None:
        self.api, self.ws = api, ws
        self.base = f"/workspaces/{_seg(ws)}"

    # ingest
    async def data_import_keys(self) -> list[dict]:
        answer = await self.api.call("ingest", "GET", f"{self.base}/data-import-keys", params={"limit": MAX_LISTED})
        return answer["keys"]

    async def create_data_import_key(self) -> dict:
        return await self.api.call("ingest", "POST", f"{self.base}/data-import-keys")

    async def invalidate_data_import_key(self, key_id: str) -> None:
        await self.api.call("ingest", "DELETE", f"{self.base}/data-import-keys/{_seg(key_id)}")

    async def rest_api_keys(self) -> list[dict]:
        answer = await self.api.call("ingest", "GET", f"{self.base}/rest-api-keys", params={"limit": MAX_LISTED},
                                     optional=True)
        return answer["keys"]

    async def create_rest_api_key(self, name: str, permissions: list[str]) -> dict:
        return await self.api.call("ingest", "POST", f"{self.base}/rest-api-keys",
                                   json={"name": name, "permissions": permissions}, optional=True)

    async def invalidate_rest_api_key(self, key_id: str) -> None:
        await self.api.call("ingest", "DELETE", f"{self.base}/rest-api-keys/{_seg(key_id)}", optional=True)

    # identity-resolution
    async def identity(self, user_ref: str) -> dict:
        return await self.api.call("identity-resolution", "GET", f"{self.base}/identities/{_seg(user_ref)}")

    # segment-store
    async def cohorts(self) -> list[dict]:
        answer = await self.api.call("segment-store", "GET", f"{self.base}/cohorts", params={"limit": MAX_LISTED})
        return answer["cohorts"]

    async def cohort(self, partner: str, cohort_id: str) -> dict:
        return await self.api.call("segment-store", "GET", f"{self.base}/cohorts/{_seg(cohort_id)}",
                                   params={"partner": partner})

    async def cohort_members(self, partner: str, cohort_id: str, cursor: str | None, limit: int) -> dict:
        params = {"partner": partner, "limit": limit, **({"cursor": cursor} if cursor else {})}
        return await self.api.call("segment-store", "GET", f"{self.base}/cohorts/{_seg(cohort_id)}/members",
                                   params=params)

    async def user_cohorts(self, user_ref: str) -> dict:
        return await self.api.call("segment-store", "GET", f"{self.base}/users/{_seg(user_ref)}/cohorts")

    async def segments(self) -> list[dict]:
        answer = await self.api.call("segment-store", "GET", f"{self.base}/segments", params={"limit": MAX_LISTED})
        return answer["segments"]

    async def preview_segment(self, segment_filter: dict) -> dict:
        return await self.api.call("segment-store", "POST", f"{self.base}/segments/preview",
                                   json={"filter": segment_filter}, optional=True)

    async def create_segment(self, name: str, segment_filter: dict) -> dict:
        return await self.api.call("segment-store", "POST", f"{self.base}/segments",
                                   json={"name": name, "filter": segment_filter})

    async def segment(self, segment_id: str) -> dict:
        return await self.api.call("segment-store", "GET", f"{self.base}/segments/{_seg(segment_id)}")

    async def segment_members(self, segment_id: str, cursor: str | None, limit: int) -> dict:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        return await self.api.call("segment-store", "GET", f"{self.base}/segments/{_seg(segment_id)}/members",
                                   params=params)

    async def segment_contains(self, segment_id: str, user_ref: str) -> bool:
        answer = await self.api.call("segment-store", "GET",
                                     f"{self.base}/segments/{_seg(segment_id)}/contains/{_seg(user_ref)}")
        return bool(answer["contains"])

    async def usage(self) -> int:
        return int((await self.api.call("segment-store", "GET", f"{self.base}/usage"))["data_points"])

    async def usage_history(self, hours: int) -> list[dict]:
        answer = await self.api.call("segment-store", "GET", f"{self.base}/usage/history", params={"hours": hours},
                                     optional=True)
        return answer["hours"]

    # delivery
    async def webhooks(self) -> list[dict]:
        answer = await self.api.call("delivery", "GET", f"{self.base}/webhooks", params={"limit": MAX_LISTED},
                                     optional=True)
        return answer["webhooks"]
