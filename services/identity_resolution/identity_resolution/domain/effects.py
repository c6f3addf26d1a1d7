"""What applying one input record yields: the messages to publish, in order, and a tally
for the metrics (the stream records them once the batch is committed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cohort_shared.schemas import Message

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)



PARK_COUNT_BUCKET_MS = 600_000
"""Parked changes are counted per 10 minutes of expiry: a bucket stops counting once its
time has passed, so changes that expired unread leave the count without being visited."""


@dataclass(frozen=True)
class Clock:
    """The time a record is applied at, until when an unknown identifier stays parked, and
    how many changes a workspace may have parked. Read once per batch and passed in, so a
    batch's rules are deterministic."""

    now: datetime
    park_window_seconds: int
    max_parked: int = 1_000_000

    @property
    def now_bucket(self) -> int:
        return self.now_ms // PARK_COUNT_BUCKET_MS

    @property
    def now_ms(self) -> int:
        # Integer arithmetic: a float timestamp times 1000 can land one millisecond short.
        return (self.now - _EPOCH) // timedelta(milliseconds=1)

    @property
    def park_until(self) -> datetime:
        return self.now + timedelta(seconds=self.park_window_seconds)

    @property
    def park_until_ms(self) -> int:
        return self.now_ms + self.park_window_seconds * 1000


@dataclass(frozen=True)
class Emitted:
    """One message to publish: its default topic name, key and value (None: a tombstone)."""

    topic: str
    key: str
    message: Message | None


@dataclass
class Tally:
    """Counts for the metrics: identifiers resolved at once, parked ones applied late,
    identifiers parked, unmatched ones by reason, identity entries skipped by reason."""

    resolved: int = 0
    drained: int = 0
    parked: int = 0
    parked_now: int = -1  # the workspace's parked changes after a cohort record; -1: not counted
    unmatched: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    skipped_entries: list[tuple[int, str]] = field(default_factory=list)  # (entry index, reason), in order

    @classmethod
    def from_json(cls, data: dict) -> Tally:
        return cls(
            resolved=int(data.get("resolved", 0)),
            drained=int(data.get("drained", 0)),
            parked=int(data.get("parked", 0)),
            parked_now=int(data.get("parked_now", -1)),
            unmatched=Counter({k: int(v) for k, v in (data.get("unmatched") or {}).items()}),
            skipped=Counter({k: int(v) for k, v in (data.get("skipped") or {}).items()}),
            skipped_entries=[(int(e["index"]), e["reason"]) for e in data.get("skipped_entries") or []],
        )


@dataclass
class Applied:
    """The outcome of one input record."""

    emitted: list[Emitted] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    entry: int = 0  # the index of the identity request entry being applied

    def emit(self, topic: str, key: str, message: Message | None) -> None:
        self.emitted.append(Emitted(topic, key, message))

    def skip(self, reason: str) -> None:
        """The current entry is skipped: counted, and reported to the operator (docs/producer-api.md)."""
        self.tally.skipped[reason] += 1
        self.tally.skipped_entries.append((self.entry, reason))
