"""Identifiers: which ones are bogus, how they are keyed, how internal user IDs are made,
and how an operator names a profile (`user_ref`)."""

from __future__ import annotations

import hashlib

from cohort_shared.schemas import Alias, Identifier, IdentifierLike, ProfileIdentifier
from cohort_shared.user_refs import RefKind, UserRef, parse_user_ref  # noqa: F401 - re-exported for the domain

# Values analytics tools send when they have no real identifier. Compared after stripping
# ASCII whitespace and lower-casing ASCII letters only.
BOGUS_VALUES = frozenset(
    {"", "null", "none", "undefined", "anonymous", "0", "-1", "[object object]", "nan"}
)
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


def is_bogus(value: str) -> bool:
    """True for a placeholder such as "null", " Undefined " or "[object Object]"."""
    stripped = value.strip(_ASCII_WHITESPACE)
    # A non-ASCII value can never equal an ASCII placeholder; lower-casing stays ASCII-only,
    # so the rule does not depend on the locale.
    return stripped.isascii() and stripped.lower() in BOGUS_VALUES


def is_bogus_identifier(identifier: IdentifierLike) -> bool:
    return is_bogus(identifier.value) or (identifier.label is not None and is_bogus(identifier.label))


def alias_key(label: str, name: str) -> str:
    """One string per alias, unambiguous whatever characters label and name hold:
    `<byte length of label>:<label><name>`."""
    return f"{len(label.encode())}:{label}{name}"


def alias_from_key(key: str) -> Alias:
    length, _, rest = key.partition(":")
    raw = rest.encode()
    n = int(length)
    return Alias(alias_label=raw[:n].decode(), alias_name=raw[n:].decode())


def sort_key(text: str) -> bytes:
    """Byte order (the same as code-point order): stable whatever the locale."""
    return text.encode()


def derive_user_id(workspace_id: str, source: str, index: int) -> str:
    """A new profile's internal ID: the same on every replay of the request that created it,
    and unique across workspaces (identity.profiles is keyed by user ID alone)."""
    return "u" + hashlib.sha1(f"{workspace_id}|{source}|{index}".encode()).hexdigest()[:23]


UNKNOWN_REASON = {"external_id": "unknown_external_id", "alias": "unknown_alias", "device_id": "unknown_device_id",
                  "user_id": "unknown_braze_id"}
"""The unmatched / skipped reason for an identifier of each kind that names no profile."""


def as_identifier(named: ProfileIdentifier) -> Identifier:
    """The `Identifier` a merge entry's `{"external_id"}`, `{"user_alias"}` or `{"device_id"}` names."""
    if named.external_id is not None:
        return Identifier(kind="external_id", value=named.external_id)
    if named.user_alias is not None:
        return Identifier(kind="alias", value=named.user_alias.alias_name, label=named.user_alias.alias_label)
    return Identifier(kind="device_id", value=named.device_id or "")


def ref_of(identifier: Identifier) -> UserRef:
    return UserRef(identifier.kind, identifier.value, identifier.label)


def is_user_id(text: str) -> bool:
    """Does `text` have the shape `derive_user_id` gives (`u` and 23 hex digits)?"""
    return len(text) == 24 and text[0] == "u" and all(c in "0123456789abcdef" for c in text[1:])
