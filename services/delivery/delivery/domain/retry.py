"""When to try again: exponential back-off with jitter, and a circuit breaker per webhook."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_delay_seconds: float
    max_age_seconds: float

    def delay(self, attempts: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds before attempt `attempts + 1`: the doubling delay, capped, with "equal
        jitter" (half fixed, half random), so retries of many events spread out but none
        comes back sooner than half its step."""
        step = min(self.max_delay_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return step / 2 + draw() * step / 2

    def gives_up(self, first_attempt_at: float, now: float) -> bool:
        """An event still failing `max_age_seconds` after its first attempt is kept as failed."""
        return now - first_attempt_at >= self.max_age_seconds


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures: then the webhook gets one probe at a
    time once `cooldown` has passed since the last failure; a success closes it."""

    threshold: int
    cooldown: float
    failures: int = 0
    opened_at: float = 0.0

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold

    def allowed_in_flight(self, now: float, limit: int) -> int:
        if not self.is_open:
            return limit
        return 1 if now >= self.opened_at + self.cooldown else 0

    def opens_again_at(self) -> float:
        return self.opened_at + self.cooldown

    def record(self, success: bool, now: float) -> None:
        if success:
            self.failures = 0
            return
        self.failures += 1
        if self.is_open:
            self.opened_at = now
