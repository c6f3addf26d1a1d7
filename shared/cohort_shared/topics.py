"""Topic names: every topic of docs/overview.md and docs/events.md, and the one rule that derives DLQ names."""

from __future__ import annotations

from dataclasses import dataclass

COHORT_CHANGES = "cohort.changes"
COHORT_META = "cohort.meta"
IDENTITY_EVENTS = "identity.events"
IDENTITY_FORWARDED = "identity.forwarded"  # internal to identity-resolution
MEMBERSHIP_RESOLVED = "membership.resolved"
MEMBERSHIP_UNMATCHED = "membership.unmatched"
IDENTITY_MERGES = "identity.merges"
IDENTITY_PROFILES = "identity.profiles"
MEMBERSHIP_CHANGES = "membership.changes"
SEGMENT_HANDOVERS = "segment.handovers"  # internal to segment-store

ALL_TOPICS = (
    COHORT_CHANGES,
    COHORT_META,
    IDENTITY_EVENTS,
    IDENTITY_FORWARDED,
    MEMBERSHIP_RESOLVED,
    MEMBERSHIP_UNMATCHED,
    IDENTITY_MERGES,
    IDENTITY_PROFILES,
    MEMBERSHIP_CHANGES,
    SEGMENT_HANDOVERS,
)

# identity.profiles holds each profile's current identifiers: only the latest value per
# user matters, and a tombstone deletes it (docs/overview.md).
COMPACTED_TOPICS = frozenset({IDENTITY_PROFILES})


def dlq_name(topic: str) -> str:
    """The dead-letter topic of `topic` (docs/operations.md): `<topic>.dlq`."""
    return f"{topic}.dlq"


@dataclass(frozen=True)
class Topics:
    """Topic names as deployed: every default name behind `TOPIC_PREFIX`."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def cohort_changes(self) -> str:
        return self.name(COHORT_CHANGES)

    @property
    def cohort_meta(self) -> str:
        return self.name(COHORT_META)

    @property
    def identity_events(self) -> str:
        return self.name(IDENTITY_EVENTS)

    @property
    def identity_forwarded(self) -> str:
        return self.name(IDENTITY_FORWARDED)

    @property
    def membership_resolved(self) -> str:
        return self.name(MEMBERSHIP_RESOLVED)

    @property
    def membership_unmatched(self) -> str:
        return self.name(MEMBERSHIP_UNMATCHED)

    @property
    def identity_merges(self) -> str:
        return self.name(IDENTITY_MERGES)

    @property
    def identity_profiles(self) -> str:
        return self.name(IDENTITY_PROFILES)

    @property
    def membership_changes(self) -> str:
        return self.name(MEMBERSHIP_CHANGES)

    @property
    def segment_handovers(self) -> str:
        return self.name(SEGMENT_HANDOVERS)

    def all(self) -> list[str]:
        """Every topic with its DLQ, as deployed."""
        names = [self.name(t) for t in ALL_TOPICS]
        return names + [dlq_name(n) for n in names]

    def is_compacted(self, name: str) -> bool:
        return any(name == self.name(t) for t in COMPACTED_TOPICS)
