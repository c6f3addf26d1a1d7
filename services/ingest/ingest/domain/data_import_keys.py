"""Data import keys: how they are made, stored (as hashes only) and shown (masked).

A key is 32 random bytes (256 bits) from `secrets`. It is stored only as its SHA-256:
a slow, salted password hash (bcrypt, argon2) exists to make guessing a *low-entropy*
secret expensive, and nobody can enumerate 2^256 candidates however fast the hash is. A
plain SHA-256 is also deterministic, so the hash itself is the lookup key: one Redis read
per request, not a scan, and no CPU-heavy hashing on the request path for an attacker to
exploit. A Redis dump therefore yields nothing that can call the API.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cohort_shared.schemas import WORKSPACE_PATTERN

from .errors import InvalidRequest

KEY_PREFIX = "dik_"  # recognisable in a leaked-secret scan, like GitHub's ghp_ tokens
MAX_CLIENT_SECRET_LENGTH = 256  # far longer than any key we issue; longer ones are not even hashed
SHOWN_CHARS = 4


def new_data_import_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return secrets.token_hex(8)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def masked(key: str) -> str:
    """`dik_AbCd…wxyz`-style: enough to tell keys apart, 48 of 256 bits shown."""
    body = key.removeprefix(KEY_PREFIX)
    return f"{KEY_PREFIX}{body[:SHOWN_CHARS]}…{body[-SHOWN_CHARS:]}"


def plausible_client_secret(value: object) -> bool:
    """Worth a lookup at all: a non-empty string of sane length."""
    return isinstance(value, str) and 0 < len(value) <= MAX_CLIENT_SECRET_LENGTH


def check_workspace(workspace_id: str) -> str:
    if not re.fullmatch(WORKSPACE_PATTERN, workspace_id):
        raise InvalidRequest("workspace must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")
    return workspace_id


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid data import key belongs to."""

    workspace_id: str
    key_id: str


@dataclass(frozen=True)
class KeyRecord:
    """What is kept about a key: never the key itself."""

    key_id: str
    key_hash: str
    masked: str
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: the only time the clear key exists outside the caller."""

    key_id: str
    data_import_key: str
    record: KeyRecord


def issue_key(now: datetime) -> IssuedKey:
    key, key_id = new_data_import_key(), new_key_id()
    return IssuedKey(key_id, key, KeyRecord(key_id, key_hash(key), masked(key), now))
