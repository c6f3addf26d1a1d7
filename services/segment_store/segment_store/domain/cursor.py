"""Opaque page cursors for member listings.

Members are walked in the order of their user number, which never changes for a user; the
cursor is the last number returned, so every member present for the whole walk comes back
exactly once, whatever is added or removed meanwhile. The cursor names the listing it
belongs to (a check value), so one from another cohort or segment is refused, not misread.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from .errors import Invalid

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(listing: str, after: int) -> str:
    check = zlib.crc32(listing.encode()) & 0xFFFF
    return base64.urlsafe_b64encode(f"1.{after}.{check}".encode()).decode().rstrip("=")


def decode_cursor(listing: str, cursor: str | None) -> int:
    """The user number to continue after; 0 (the start) when there is no cursor."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, after, check = text.split(".")
        if version != "1" or int(check) != zlib.crc32(listing.encode()) & 0xFFFF or int(after) < 0:
            raise ValueError
        return int(after)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid("cursor is not a cursor of this listing") from None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit
