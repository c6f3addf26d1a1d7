"""Workspace keys — data import keys and REST API keys (docs/braze-rest.md) — made, stored
(as hashes only) and shown (masked) by one set of rules; `KeyKind` says which.

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
from dataclasses import dataclass, field
from datetime import datetime

from cohort_shared.schemas import WORKSPACE_PATTERN

from .errors import InvalidRequest

MAX_CLIENT_SECRET_LENGTH = 256  # far longer than any key we issue; longer ones are not even hashed
SHOWN_CHARS = 4


@dataclass(frozen=True)
class KeyKind:
    """One kind of workspace key: its clear-text prefix (recognisable in a leaked-secret scan,
    like GitHub's ghp_ tokens) and the name its records are stored under."""

    name: str
    prefix: str


DATA_IMPORT_KEYS = KeyKind("data-import-key", "dik_")
REST_API_KEYS = KeyKind("rest-api-key", "rak_")


def new_key(kind: KeyKind) -> str:
    return kind.prefix + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return secrets.token_hex(8)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def masked(key: str, kind: KeyKind = DATA_IMPORT_KEYS) -> str:
    """`dik_AbCd…wxyz`-style: enough to tell keys apart, 48 of 256 bits shown."""
    body = key.removeprefix(kind.prefix)
    return f"{kind.prefix}{body[:SHOWN_CHARS]}…{body[-SHOWN_CHARS:]}"


def plausible_client_secret(value: object) -> bool:
    """Worth a lookup at all: a non-empty string of sane length."""
    return isinstance(value, str) and 0 < len(value) <= MAX_CLIENT_SECRET_LENGTH


def check_workspace(workspace_id: str) -> str:
    if not re.fullmatch(WORKSPACE_PATTERN, workspace_id):
        raise InvalidRequest("workspace must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -")
    return workspace_id


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to, and (REST API keys) the endpoints it may call."""

    workspace_id: str
    key_id: str
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeyRecord:
    """What is kept about a key: never the key itself."""

    key_id: str
    key_hash: str
    masked: str
    created_at: datetime
    last_used_at: datetime | None = None
    name: str | None = None
    permissions: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: the only time the clear key exists outside the caller."""

    key_id: str
    secret: str
    record: KeyRecord


def issue_key(now: datetime, kind: KeyKind = DATA_IMPORT_KEYS, name: str | None = None,
              permissions: tuple[str, ...] = ()) -> IssuedKey:
    key, key_id = new_key(kind), new_key_id()
    return IssuedKey(key_id, key, KeyRecord(key_id, key_hash(key), masked(key, kind), now, None, name, permissions))
