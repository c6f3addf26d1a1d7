"""The export view's rules, on the part of one task's view a batch loaded: what each
`identity.profiles` record changes.

The view keeps, per profile, its identifiers and attributes (the latest snapshot wins); a
tombstone forgets the profile. An index maps identifiers (and the email / phone
attributes) to profiles for the selectors. The cohorts a profile is in are not kept here:
the export reads them from segment-store, which owns membership.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cohort_shared import schemas as s

SEP = "\x1f"


def identifier_fields(profile: dict[str, Any]) -> list[str]:
    """The unique index's fields of a stored profile: its external ID, aliases and devices."""
    fields = [f"x{SEP}{profile['x']}"] if profile.get("x") is not None else []
    fields += [f"a{SEP}{label}{SEP}{name}" for label, name in profile.get("a", [])]
    return fields + [f"d{SEP}{device}" for device in profile.get("d", [])]


def attribute_fields(profile: dict[str, Any]) -> list[str]:
    """The email and phone attributes as index fields: several profiles may share one."""
    attributes = profile.get("t", {})
    fields = [f"e{SEP}{attributes['email'].lower()}"] if isinstance(attributes.get("email"), str) else []
    return fields + ([f"p{SEP}{attributes['phone']}"] if isinstance(attributes.get("phone"), str) else [])


def stored_profile(message: s.ProfileUpdated) -> dict[str, Any]:
    return {"x": message.external_id, "a": [[a.alias_label, a.alias_name] for a in message.aliases],
            "d": list(message.device_ids), "t": dict(message.custom_attributes)}


@dataclass
class ViewSlice:
    """One workspace's share of one task's view, as loaded for a batch, and what changed."""

    ws: str
    profiles: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    holders: dict[str, str | None] = field(default_factory=dict)
    """unique index field → the profile it names (loaded for every field of a loaded profile)"""
    shared: dict[tuple[str, str], bool] = field(default_factory=dict)
    """(email/phone field, user_id) → added (True) or removed (False)"""
    homes: dict[str, str | None] = field(default_factory=dict)
    """user_id → its workspace (None: forget it), for tombstones, which name no workspace"""
    dirty_profiles: set[str] = field(default_factory=set)
    dirty_holders: set[str] = field(default_factory=set)

    def _unindex(self, user_id: str, old: dict[str, Any] | None) -> None:
        if old is None:
            return
        for name in identifier_fields(old):
            if self.holders.get(name) == user_id:
                self.holders[name] = None
                self.dirty_holders.add(name)
        for name in attribute_fields(old):
            self.shared[name, user_id] = False

    def profile_updated(self, message: s.ProfileUpdated) -> None:
        user_id, new = message.user_id, stored_profile(message)
        self._unindex(user_id, self.profiles.get(user_id))
        for name in identifier_fields(new):
            self.holders[name] = user_id
            self.dirty_holders.add(name)
        for name in attribute_fields(new):
            self.shared[name, user_id] = True
        self.profiles[user_id] = new
        self.dirty_profiles.add(user_id)
        self.homes[user_id] = self.ws

    def profile_gone(self, user_id: str) -> None:
        """A tombstone: deleted, or merged into another profile."""
        self._unindex(user_id, self.profiles.get(user_id))
        self.profiles[user_id] = None
        self.dirty_profiles.add(user_id)
        self.homes[user_id] = None
