"""A webhook's queue of events, and which of them may be sent now.

Per user, events go out in the order they were queued: only a user's first queued event is
ever a candidate, so a later event of that user waits while an earlier one is in flight or
waiting for its retry. Events of other users go on meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import orjson


@dataclass(frozen=True)
class QueuedEvent:
    """One event waiting for one webhook, with its delivery history."""

    event_id: str
    user_id: str
    event: dict
    attempts: int = 0
    first_attempt_at: float | None = None
    next_attempt_at: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps({"e": self.event, "u": self.user_id, "n": self.attempts, "f": self.first_attempt_at,
                             "t": self.next_attempt_at})

    @classmethod
    def from_json(cls, event_id: str, raw: bytes) -> QueuedEvent:
        data = orjson.loads(raw)
        return cls(event_id, data["u"], data["e"], data["n"], data["f"], data["t"])

    def failed_attempt(self, now: float, delay: float) -> QueuedEvent:
        return replace(self, attempts=self.attempts + 1, first_attempt_at=self.first_attempt_at or now,
                       next_attempt_at=now + delay)


def sendable(window: Sequence[QueuedEvent], in_flight: Iterable[str], now: float, limit: int) -> list[QueuedEvent]:
    """At most `limit` events of `window` (in queue order) that may be sent now: each the
    first queued event of its user, not in flight, and due."""
    busy = set(in_flight)
    seen_users: set[str] = set()
    chosen: list[QueuedEvent] = []
    for queued in window:
        if len(chosen) >= limit:
            break
        if queued.user_id in seen_users:
            continue
        seen_users.add(queued.user_id)
        if queued.event_id not in busy and queued.next_attempt_at <= now:
            chosen.append(queued)
    return chosen


def next_due(window: Sequence[QueuedEvent], in_flight: Iterable[str]) -> float | None:
    """When the earliest waiting head-of-user event of `window` falls due; None if none waits."""
    busy = set(in_flight)
    seen_users: set[str] = set()
    due: float | None = None
    for queued in window:
        if queued.user_id in seen_users:
            continue
        seen_users.add(queued.user_id)
        if queued.event_id not in busy:
            due = queued.next_attempt_at if due is None else min(due, queued.next_attempt_at)
    return due
