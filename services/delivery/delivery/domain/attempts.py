"""What became of one attempt to deliver one event to one webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from .queue import QueuedEvent
from .retry import RetryPolicy

Result = Literal["delivered", "retrying", "failed"]


@dataclass(frozen=True)
class Attempt:
    """One attempt: the answer (`status_code`) or why there was none (`error`), and what
    follows for the event: delivered, retrying (its `next` state), or failed for good."""

    queued: QueuedEvent
    at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    result: Result

    @property
    def event_id(self) -> str:
        return self.queued.event_id

    def record(self) -> bytes:
        """The line `GET …/attempts` shows."""
        return orjson.dumps({"event_id": self.event_id, "attempt": self.queued.attempts + (self.result == "delivered"),
                             "at": self.at, "status_code": self.status_code, "error": self.error,
                             "duration_ms": round(self.duration_ms, 1), "result": self.result})


def judge(queued: QueuedEvent, *, status_code: int | None, error: str | None, at: float, duration_ms: float,
          policy: RetryPolicy) -> Attempt:
    """A 2xx is success; anything else (or no answer) is retried with back-off until the
    policy gives up on the event, which is then failed."""
    if status_code is not None and 200 <= status_code < 300:
        return Attempt(queued, at, duration_ms, status_code, None, "delivered")
    retried = queued.failed_attempt(at, policy.delay(queued.attempts + 1))
    gave_up = policy.gives_up(retried.first_attempt_at or at, at)
    return Attempt(retried, at, duration_ms, status_code, error or f"HTTP {status_code}",
                   "failed" if gave_up else "retrying")
