"""Packing changes into `cohort_changes` requests of at most 1,000 identifiers (docs/producer-api.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from ..identifiers import Change

MAX_IDENTIFIERS_PER_REQUEST = 1000


@dataclass(frozen=True)
class Batch:
    """The `cohort_changes` of one request and how many identifiers it carries."""

    entries: list[dict[str, Any]]
    identifiers: int


def batch_changes(changes: Sequence[Change], limit: int = MAX_IDENTIFIERS_PER_REQUEST) -> list[Batch]:
    """Consecutive slices of `limit` changes, each slice grouped into as few entries as its
    (should_remove, timestamp) pairs allow. User IDs, device IDs and aliases all count."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return [
        Batch(entries=_entries(changes[start : start + limit]), identifiers=len(changes[start : start + limit]))
        for start in range(0, len(changes), limit)
    ]


def _entries(changes: Sequence[Change]) -> list[dict[str, Any]]:
    ordered = sorted(changes, key=_entry_key)
    return [_entry(should_remove, stamp, list(group)) for (should_remove, stamp), group in groupby(ordered, _group)]


def _group(change: Change) -> tuple[bool, datetime | None]:
    return change.should_remove, change.timestamp


def _entry_key(change: Change) -> tuple[bool, str]:
    return change.should_remove, change.timestamp.isoformat() if change.timestamp else ""


def _entry(should_remove: bool, stamp: datetime | None, changes: list[Change]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for kind, field in (("external_id", "user_ids"), ("device_id", "device_ids")):
        values = [c.identifier.value for c in changes if c.identifier.kind == kind]
        if values:
            entry[field] = values
    aliases = [
        {"alias_name": c.identifier.value, "alias_label": c.identifier.label}
        for c in changes
        if c.identifier.kind == "alias"
    ]
    if aliases:
        entry["aliases"] = aliases
    if should_remove:
        entry["should_remove"] = True
    if stamp is not None:
        entry["timestamp"] = stamp.isoformat()
    return entry
