"""What applying one input record yields: the messages to publish, in order, and a tally
for the metrics. The Lua script returns the same, encoded (the tally as a `_tally` output)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cohort_shared.schemas import Message

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TALLY_TOPIC = "_tally"
"""Pseudo-topic of the tally the script returns with its outputs; never published."""


@dataclass(frozen=True)
class Clock:
    """The time a record is applied at, and until when an unknown identifier stays parked.
    Passed in rather than read inside the script, so Python and Lua agree to the millisecond."""

    now: datetime
    park_window_seconds: int

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
    unmatched: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    @classmethod
    def from_json(cls, data: dict) -> Tally:
        return cls(
            resolved=int(data.get("resolved", 0)),
            drained=int(data.get("drained", 0)),
            parked=int(data.get("parked", 0)),
            unmatched=Counter({k: int(v) for k, v in (data.get("unmatched") or {}).items()}),
            skipped=Counter({k: int(v) for k, v in (data.get("skipped") or {}).items()}),
        )


@dataclass
class Applied:
    """The outcome of one input record."""

    emitted: list[Emitted] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    def emit(self, topic: str, key: str, message: Message | None) -> None:
        self.emitted.append(Emitted(topic, key, message))

    def skip(self, reason: str) -> None:
        self.tally.skipped[reason] += 1
