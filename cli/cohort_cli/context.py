"""What every command shares: where the services are, the operator token, and the HTTP clients."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import typer
from cohort_shared.schemas import PARTNER_PATTERN, WORKSPACE_PATTERN

from .http_client import REQUEST_TIMEOUT, ApiError, Sleep, checked


@dataclass(frozen=True)
class ClientHooks:
    """Seams for tests: an httpx transport (e.g. MockTransport) and a sleep that does not wait."""

    transport: Any = None
    sleep: Sleep = asyncio.sleep


@dataclass
class CliState:
    ingest_url: str
    identity_url: str
    segment_url: str
    admin_token: str | None
    delivery_url: str = "http://127.0.0.1:8083"
    as_json: bool = False
    hooks: ClientHooks = field(default_factory=ClientHooks)
    secrets: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.admin_token:
            self.secrets.append(self.admin_token)

    def keep_secret(self, value: str) -> str:
        """Remember a secret so no printed error can show it."""
        self.secrets.append(value)
        return value

    def operator(self, base_url: str) -> OperatorClient:
        return OperatorClient(base_url, self._token(), self.hooks.transport)

    def async_client(self, base_url: str, admin: bool) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._token()}"} if admin else {}
        return httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT, transport=self.hooks.transport
        )

    def _token(self) -> str:
        if not self.admin_token:
            raise typer.BadParameter("no operator token: set ADMIN_TOKEN or pass --admin-token")
        return self.admin_token


PAGE_SIZE = 1000  # the most a list endpoint gives per page


class OperatorClient:
    """One-off operator calls (SPEC: `Authorization: Bearer $ADMIN_TOKEN`); errors carry the server's message."""

    def __init__(self, base_url: str, token: str, transport: Any = None) -> None:
        self.base_url = base_url
        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT,
            transport=transport,
        )

    def request(self, method: str, path: str, json: Any = None) -> Any:
        try:
            with self.client:
                return checked(self.client.request(method, path, json=json))
        except httpx.TransportError as error:
            raise ApiError(f"cannot reach {self.base_url} ({type(error).__name__})") from None

    def all_pages(self, path: str, field: str) -> dict[str, list]:
        """Every item of a paged list (`limit`, `cursor`, `next_cursor`), in the server's order."""
        items: list = []
        cursor = None
        try:
            with self.client:
                while True:
                    params = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
                    page = checked(self.client.get(path, params=params))
                    items += page.get(field) or []
                    cursor = page.get("next_cursor")
                    if not cursor:
                        return {field: items}
        except httpx.TransportError as error:
            raise ApiError(f"cannot reach {self.base_url} ({type(error).__name__})") from None


def path_part(value: str) -> str:
    """A user_ref or cohort ID as one path segment (a `/` in it must not split the path)."""
    return quote(value, safe=":@")


_WORKSPACE = re.compile(WORKSPACE_PATTERN)


def check_workspace(value: str) -> str:
    if value is not None and not _WORKSPACE.match(value):
        raise typer.BadParameter("a workspace is 1-64 letters, digits, '_' or '-'")
    return value


_PARTNER = re.compile(PARTNER_PATTERN)


def check_partner(value: str) -> str:
    if not _PARTNER.match(value):
        raise typer.BadParameter("a partner is lower-case, e.g. mixpanel or amplitude")
    return value
