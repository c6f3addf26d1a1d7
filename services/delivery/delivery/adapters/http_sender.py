"""POSTing deliveries with aiohttp: one connection pool for every webhook (per-webhook limits
are the dispatcher's), no redirects followed, and every address checked before it is
connected to: a literal one here, a resolved name's in `GuardedResolver`, so a name that
resolves to a private address (or starts to, later) is refused too."""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol

import aiohttp
from aiohttp.resolver import ThreadedResolver

from ..domain.urls import RefusedAddress, host_of, is_refused_address, literal_address

REFUSED = "address not allowed (loopback, link-local or private; see WEBHOOK_ALLOW_PRIVATE)"


class Sender(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]: ...


class GuardedResolver(ThreadedResolver):
    """Resolves as aiohttp does, then refuses the name if any answer is refused."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await super().resolve(host, port, family)
        if any(is_refused_address(answer["host"], self._allow_private) for answer in answers):
            raise RefusedAddress(REFUSED)
        return answers


class AiohttpSender:
    def __init__(self, *, allow_private: bool, timeout_seconds: float) -> None:
        self._allow_private = allow_private
        self._timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10, resolver=GuardedResolver(self._allow_private))
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout_seconds),
                                              skip_auto_headers=["User-Agent"], headers={"user-agent": "cohort-delivery/1"})

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """The status the endpoint answered, or why there was none (naming no URL or secret)."""
        literal = literal_address(host_of(url))
        if literal is not None and is_refused_address(literal, self._allow_private):
            return None, REFUSED
        assert self._session is not None, "start() first"
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                return answer.status, None
        except TimeoutError:
            return None, f"no answer within {self._timeout_seconds:g} s"
        except RefusedAddress:
            return None, REFUSED
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, RefusedAddress):
                return None, REFUSED
            return None, "cannot connect"
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as error:
            return None, type(error).__name__
