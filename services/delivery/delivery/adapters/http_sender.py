"""POSTing deliveries: HTTP/1.1 on kept-alive connections, one request at a time on each,
pooled per origin (per-webhook limits are the dispatcher's); no redirects followed; every
address checked before it is connected to: a literal one, and every address a name resolves
to (cached 10 s), so a name that resolves to a private address (or starts to, later) is
refused too.

Why not aiohttp's client: it cost ~95 µs of CPU per POST on this machine, a third of what
delivery spent per event; this client needs about a third of that (README, Performance).
What a webhook POST needs of HTTP is small: write the request, read the status line and
headers, read the body to its end (kept-alive) or to the close, with llhttp (`httptools`,
the parser uvicorn serves with) doing the parsing. HTTPS is the standard library's TLS with
certificate and host-name checks.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httptools

from ..domain.urls import RefusedAddress, is_refused_address, literal_address

REFUSED = "address not allowed (loopback, link-local or private; see WEBHOOK_ALLOW_PRIVATE)"
DNS_TTL_SECONDS = 10.0
MAX_IDLE_PER_ORIGIN = 128
USER_AGENT = "cohort-delivery/1"


class Sender(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]: ...


class CannotConnect(OSError):
    """No address of the host took the connection."""


class InvalidUrl(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    """Where a URL's request goes, and the start of its request."""

    tls: bool
    host: str
    port: int
    head: bytes  # request line, Host, User-Agent and Authorization (from the URL's user info)

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.tls, self.host, self.port


def destination_of(url: str) -> Destination:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl(url)
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidUrl(url)  # nothing that could end a header line
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    lines = [f"POST {target} HTTP/1.1", f"Host: {shown}" + ("" if parts.port is None else f":{port}"),
             f"User-Agent: {USER_AGENT}"]
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        lines.append("Authorization: Basic " + base64.b64encode(credentials).decode())
    return Destination(tls, host, port, ("\r\n".join(lines) + "\r\n").encode("latin-1"))


class Connection(asyncio.Protocol):
    """One kept-alive connection: a request at a time, its answer's status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        self.got_bytes = False
        self._status: int | None = None
        self._answer: asyncio.Future[int] | None = None

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._status is not None:  # a body that ends with the connection
            self._done(self._status)
        else:
            self._fail(ConnectionResetError("the connection closed before an answer"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        if self._status is not None:
            self._done(self._status)

    def _done(self, status: int) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(status)

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    async def exchange(self, request: bytes) -> int:
        """Send `request`; the status, once the whole answer is read."""
        self._status, self.reusable, self.got_bytes = None, False, False
        self._answer = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return await self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpSender:
    def __init__(self, *, allow_private: bool, timeout_seconds: float) -> None:
        self._allow_private = allow_private
        self._timeout_seconds = timeout_seconds
        self._idle: dict[tuple[bool, str, int], list[Connection]] = defaultdict(list)
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._destinations: dict[str, Destination] = {}
        self._tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        self._tls = ssl.create_default_context()

    async def stop(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        """The status the endpoint answered, or why there was none (naming no URL or secret)."""
        try:
            destination = self._destination(url)
        except ValueError:  # InvalidUrl, or a port that is not a number
            return None, "invalid URL"
        literal = literal_address(destination.host)
        if literal is not None and is_refused_address(literal, self._allow_private):
            return None, REFUSED
        request = b"".join((destination.head, _header_lines(headers, len(body)), body))
        try:
            async with asyncio.timeout(self._timeout_seconds):
                return await self._send(destination, request), None
        except TimeoutError:
            return None, f"no answer within {self._timeout_seconds:g} s"
        except RefusedAddress:
            return None, REFUSED
        except (CannotConnect, socket.gaierror):
            return None, "cannot connect"
        except (OSError, httptools.HttpParserError, ssl.SSLError) as error:
            return None, type(error).__name__

    def _destination(self, url: str) -> Destination:
        found = self._destinations.get(url)
        if found is None:
            if len(self._destinations) > 10_000:
                self._destinations.clear()
            found = self._destinations[url] = destination_of(url)
        return found

    async def _send(self, destination: Destination, request: bytes) -> int:
        idle = self._idle[destination.origin]
        while idle:  # a kept-alive connection, unless the server closed it meanwhile
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                return await self._exchange(destination, connection, request)
            except ConnectionResetError:
                if connection.got_bytes:
                    raise
                # closed before answering anything: a stale connection, try another
        return await self._exchange(destination, await self._connect(destination), request)

    async def _exchange(self, destination: Destination, connection: Connection, request: bytes) -> int:
        """One request on `connection`, kept for the next if it may be; closed on any failure."""
        try:
            status = await connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        self._keep(destination, connection)
        return status

    def _keep(self, destination: Destination, connection: Connection) -> None:
        idle = self._idle[destination.origin]
        if connection.reusable and not connection.closed and len(idle) < MAX_IDLE_PER_ORIGIN:
            idle.append(connection)
        else:
            connection.close()

    async def _connect(self, destination: Destination) -> Connection:
        loop = asyncio.get_running_loop()
        failure: OSError | None = None
        for address in await self._addresses(destination.host, destination.port):
            try:
                _, connection = await loop.create_connection(
                    Connection, address, destination.port, ssl=self._tls if destination.tls else None,
                    server_hostname=destination.host if destination.tls else None)
                return connection
            except OSError as error:
                failure = error
        raise CannotConnect("no address took the connection") from failure

    async def _addresses(self, host: str, port: int) -> list[str]:
        """The addresses to try, all of them allowed; refused if any is not."""
        literal = literal_address(host)
        if literal is not None:
            return [str(literal)]
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in answers))
        if any(is_refused_address(address, self._allow_private) for address in addresses):
            raise RefusedAddress(REFUSED)
        self._dns[host, port] = (time.monotonic() + DNS_TTL_SECONDS, addresses)
        return addresses


def _header_lines(headers: dict[str, str], length: int) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{lines}Content-Length: {length}\r\n\r\n".encode("latin-1")
