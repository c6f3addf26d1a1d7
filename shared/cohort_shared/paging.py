"""Pages of a workspace's lists (cohorts, keys, segments, webhooks; docs/operations.md): `limit`
(default 100, at most 1,000) and an opaque `cursor`, answered with `next_cursor` (null on
the last page). Items are walked in the order of a stable key and the cursor is the last
key returned, so an item present for the whole walk is listed exactly once. A cursor names
its listing (a check value): one from another list is refused, not misread."""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable, Iterable
from typing import TypeVar

import orjson

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadPage(ValueError):
    """A `limit` or `cursor` the caller must fix; the message names which."""


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadPage(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _check(listing: str) -> int:
    return zlib.crc32(listing.encode()) & 0xFFFF


def encode_cursor(listing: str, after: str) -> str:
    raw = orjson.dumps([1, after, _check(listing)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None) -> str | None:
    """The key to continue after; None (the start) when there is no cursor."""
    if cursor is None:
        return None
    try:
        version, after, check = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if version != 1 or check != _check(listing) or not isinstance(after, str):
            raise ValueError
        return after
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadPage("cursor is not a cursor of this listing") from None


def page(items: Iterable[T], key: Callable[[T], str], listing: str, cursor: str | None,
         limit: int | None) -> tuple[list[T], str | None]:
    """The page of `items` (in `key` order) after `cursor`, and the next page's cursor."""
    size = check_limit(limit)
    after = decode_cursor(listing, cursor)
    ordered = sorted((item for item in items if after is None or key(item) > after), key=key)
    chosen = ordered[:size]
    more = len(ordered) > size
    return chosen, encode_cursor(listing, key(chosen[-1])) if more else None
