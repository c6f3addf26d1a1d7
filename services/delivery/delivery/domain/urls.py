"""Which webhook URLs delivery may call: `http`/`https` only, and never an address on
loopback, link-local or a private network unless the operator allows it
(`WEBHOOK_ALLOW_PRIVATE`). The check applies to a literal address in the URL and to every
address a name resolves to, at creation and again at each connection."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .errors import InvalidRequest

MAX_URL_LENGTH = 2048


def check_url(url: object) -> str:
    """The URL if its form is acceptable (scheme, host, length); 400 naming `url` if not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"url must be an http or https URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidRequest("url must be a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest("url must use http or https")
    if not parts.hostname:
        raise InvalidRequest("url must name a host")
    if any(ch.isspace() for ch in url):
        raise InvalidRequest("url must not contain spaces")
    return url


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_refused_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> bool:
    """True for an address delivery must not call: anything not globally routable (loopback,
    link-local, private, shared, reserved, unspecified) or multicast, unless allowed."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return True
    return not allow_private and not ip.is_global


class RefusedAddress(OSError):
    """A webhook's host is, or resolves to, an address delivery must not call."""
