"""The identity book of one workspace, in memory: the lookup tables, the profiles, and the
parked cohort changes waiting for an identity to appear.

The rules (matching.py, identity_ops.py) run on a `Book`; `adapters/book_store.py` loads the
part of a workspace's book a batch needs from Redis and writes back what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cohort_shared.schemas import Identifier, IdentifierLike, MembershipChange, ProfileUpdated

from .effects import PARK_COUNT_BUCKET_MS
from .identifiers import UserRef, alias_from_key, alias_key, sort_key

CreatedAs = Literal["identified", "anonymous", "alias"]


@dataclass(slots=True)  # slots: one is built per change resolved, a third cheaper
class Profile:
    """One profile. It is identified if and only if it has an external ID (docs/matching.md)."""

    user_id: str
    created_as: CreatedAs
    external_id: str | None = None
    aliases: set[str] = field(default_factory=set)  # alias keys
    devices: set[str] = field(default_factory=set)
    attributes: dict = field(default_factory=dict)  # custom attributes, latest value each

    @property
    def identified(self) -> bool:
        return self.external_id is not None

    def snapshot(self, workspace_id: str, now: datetime) -> ProfileUpdated:
        """What identity.profiles carries for this profile: identifiers in byte order, and its
        attributes."""
        return ProfileUpdated(
            workspace_id=workspace_id,
            user_id=self.user_id,
            external_id=self.external_id,
            identified=self.identified,
            aliases=[alias_from_key(k) for k in sorted(self.aliases, key=sort_key)],
            device_ids=sorted(self.devices, key=sort_key),
            custom_attributes=dict(sorted(self.attributes.items())),
            updated_at=now,
        )


@dataclass(frozen=True)
class ParkedChange:
    """A cohort change whose identifier was unknown, kept until `until_ms`."""

    partner: str
    cohort_id: str
    change: MembershipChange
    identifier: Identifier
    source_id: str
    accepted_at: datetime
    until_ms: int


def park_key(identifier: IdentifierLike) -> str:
    """Where changes waiting for `identifier` are parked (one entry per cohort)."""
    if identifier.kind == "alias":
        return "a:" + alias_key(identifier.label or "", identifier.value)
    return ("e:" if identifier.kind == "external_id" else "d:") + identifier.value


def cohort_field(partner: str, cohort_id: str) -> str:
    # partner names hold no ':' (PARTNER_PATTERN), so this is unambiguous.
    return f"{partner}:{cohort_id}"


@dataclass
class Book:
    """All identity state of one workspace."""

    workspace_id: str
    external_ids: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    parked: dict[str, dict[str, ParkedChange]] = field(default_factory=dict)
    parked_counts: dict[int, int] = field(default_factory=dict)  # expiry bucket -> parked changes
    loaded: dict = field(default_factory=dict, repr=False)  # what the store loaded (to diff)

    def live_parked(self, now_bucket: int) -> int:
        """Changes parked and not yet expired (to the bucket); forgets past buckets."""
        for bucket in [b for b in self.parked_counts if b < now_bucket]:
            del self.parked_counts[bucket]
        return sum(self.parked_counts.values())

    def count_parked(self, until_ms: int, delta: int, now_bucket: int) -> None:
        bucket = until_ms // PARK_COUNT_BUCKET_MS
        if bucket >= now_bucket:  # a past bucket is no longer counted
            self.parked_counts[bucket] = self.parked_counts.get(bucket, 0) + delta

    def holder(self, ref: UserRef) -> Profile | None:
        """The profile a user_ref names; a device names its holder even if identified."""
        if ref.kind == "user_id":
            user_id: str | None = ref.value
        elif ref.kind == "external_id":
            user_id = self.external_ids.get(ref.value)
        elif ref.kind == "alias":
            user_id = self.aliases.get(alias_key(ref.label or "", ref.value))
        else:
            user_id = self.devices.get(ref.value)
        return self.profiles.get(user_id) if user_id else None

    def create(self, user_id: str, created_as: CreatedAs) -> Profile:
        profile = Profile(user_id, created_as)
        self.profiles[user_id] = profile
        return profile

    def set_external_id(self, profile: Profile, external_id: str) -> None:
        profile.external_id = external_id
        self.external_ids[external_id] = profile.user_id

    def add_alias(self, profile: Profile, key: str) -> None:
        profile.aliases.add(key)
        self.aliases[key] = profile.user_id

    def add_device(self, profile: Profile, device_id: str) -> None:
        profile.devices.add(device_id)
        self.devices[device_id] = profile.user_id

    def remove(self, profile: Profile) -> None:
        """Forget a profile and every identifier that pointed to it."""
        if profile.external_id is not None:
            self.external_ids.pop(profile.external_id, None)
        for key in profile.aliases:
            self.aliases.pop(key, None)
        for device_id in profile.devices:
            self.devices.pop(device_id, None)
        self.profiles.pop(profile.user_id, None)
