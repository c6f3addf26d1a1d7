"""Whether a webhook URL may be called, checked when it is created: a literal address
directly, a name by resolving it (without blocking the loop) and checking every answer."""

from __future__ import annotations

import asyncio
import socket

from ..domain.errors import InvalidRequest
from ..domain.urls import host_of, is_refused_address, literal_address

REFUSED = ("url must not point at a loopback, link-local or private address "
           "(WEBHOOK_ALLOW_PRIVATE=true allows it)")


async def check_destination(url: str, allow_private: bool) -> None:
    host = host_of(url)
    literal = literal_address(host)
    if literal is not None:
        if is_refused_address(literal, allow_private):
            raise InvalidRequest(REFUSED)
        return
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidRequest("url host does not resolve") from None
    if not answers or any(is_refused_address(info[4][0].split("%")[0], allow_private) for info in answers):
        raise InvalidRequest(REFUSED)
