"""A profiles file turned into the Braze-shaped profile requests that create those users (docs/producer-api.md).

Columns: `external_id`, `device_id`, `alias_name` + `alias_label`, and optionally
`identify_external_id`. The requests go in three phases, each accepted before the next
starts, because the identity service applies one workspace's profile operations in the
order they were accepted:
1. `users/track`: every external ID (identified user) and device ID (anonymous user);
2. `users/alias/new`: every alias, on the row's external ID or, without one, alias-only;
3. `users/identify`: a row's device joins its external ID (an SDK's `changeUser`), and a
   device or alias-only profile takes `identify_external_id` (identified later).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exports import alias_of_row
from .records import Row, read_rows

PROFILE_COLUMNS = frozenset({"external_id", "device_id", "alias_name", "alias_label", "identify_external_id"})
MAX_ENTRIES_PER_REQUEST = 500


@dataclass
class ProfilePlan:
    track: list[dict[str, str]] = field(default_factory=list)
    aliases: list[dict[str, str]] = field(default_factory=list)
    identify: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class ProfileRequest:
    """One request of one phase: its path under the workspace, body and number of entries."""

    phase: str
    path: str
    body: dict[str, Any]
    entries: int


def read_profiles(path: Path) -> ProfilePlan:
    return plan_profiles(read_rows(path, PROFILE_COLUMNS))


def plan_profiles(rows: Iterable[Row]) -> ProfilePlan:
    """The entries of each phase, duplicates dropped; a row that names no one is an error."""
    plan = ProfilePlan()
    tracked: set[tuple[str, str]] = set()
    for row in rows:
        plan.rows += 1
        external_id, device_id = row.get("external_id"), row.get("device_id")
        later_id, alias = row.get("identify_external_id"), alias_of_row(row)
        if not (external_id or device_id or alias):
            raise row.error(None, "no identifier: give external_id, device_id, or alias_name with alias_label")
        if later_id and external_id:
            raise row.error("identify_external_id", "the row already has an external_id to identify with")
        if later_id and not (device_id or alias):
            raise row.error("identify_external_id", "needs a device_id or an alias to identify")
        for kind, value in (("external_id", external_id), ("device_id", device_id)):
            if value and (kind, value) not in tracked:
                tracked.add((kind, value))
                plan.track.append({kind: value})
        if alias:
            entry = {"alias_name": alias.value, "alias_label": alias.label or ""}
            plan.aliases.append({"external_id": external_id, **entry} if external_id else entry)
        owner = external_id or later_id
        if owner and device_id:
            plan.identify.append(("devices_to_identify", {"external_id": owner, "device_id": device_id}))
        if later_id and alias:
            user_alias = {"alias_name": alias.value, "alias_label": alias.label}
            plan.identify.append(("aliases_to_identify", {"external_id": later_id, "user_alias": user_alias}))
    return plan


def profile_requests(plan: ProfilePlan, limit: int = MAX_ENTRIES_PER_REQUEST) -> list[list[ProfileRequest]]:
    """The three phases as lists of requests of at most `limit` entries each."""
    track = [
        ProfileRequest("track", "users/track", {"attributes": chunk}, len(chunk))
        for chunk in _chunks(plan.track, limit)
    ]
    aliases = [
        ProfileRequest("alias", "users/alias/new", {"user_aliases": chunk}, len(chunk))
        for chunk in _chunks(plan.aliases, limit)
    ]
    identify = []
    for chunk in _chunks(plan.identify, limit):
        body: dict[str, list[Any]] = {"aliases_to_identify": [], "devices_to_identify": []}
        for field_name, entry in chunk:
            body[field_name].append(entry)
        identify.append(ProfileRequest("identify", "users/identify", body, len(chunk)))
    return [phase for phase in (track, aliases, identify) if phase]


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
