"""When to try a request again: exponential backoff with jitter, honouring `Retry-After`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable(status: int) -> bool:
    """5xx and 429 are worth another try; any other 4xx will fail the same way again."""
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts; delays double from `base_delay` up to `max_delay`, each drawn from
    its upper half so many clients do not retry in step; a `Retry-After` longer than the
    computed delay wins, but one past `max_retry_after` ends the attempts instead of hanging."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def delay(self, retry: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        jittered = backoff * (0.5 + rand() / 2)
        return max(jittered, retry_after or 0.0)

    def gives_up(self, attempts: int, retry_after: float | None = None) -> bool:
        """After `attempts` tries: stop now?"""
        too_long = retry_after is not None and retry_after > self.max_retry_after
        return attempts >= self.max_attempts or too_long


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
