"""HTTP calls that retry the way Mixpanel's cohort export does: on 5xx, 429 (honouring
Retry-After) and lost connections, with exponential back-off and full jitter, until the run's
deadline. Every attempt is recorded, because the oracle needs to know which requests may
have landed more than once."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

# An attempt that may have reached Kafka although it was not acknowledged: a retry can make
# the same request land twice (harmless for memberships, counted again in sync reports).
AMBIGUOUS = frozenset({"server_error", "connection"})


@dataclass
class Outcome:
    response: httpx.Response | None  # the final answer; None when the deadline came first
    attempts: list[str] = field(default_factory=list)  # accepted | refused | rate_limited | server_error | connection
    statuses: list[int] = field(default_factory=list)  # the HTTP status of each attempt that got an answer

    @property
    def ambiguous_failures(self) -> int:
        return sum(a in AMBIGUOUS for a in self.attempts)


class DeadlineReached(Exception):
    def __init__(self, what: str, outcome: Outcome) -> None:
        super().__init__(f"{what}: still unanswered at the deadline after {outcome.attempts[-3:]}")
        self.outcome = outcome


class RetryingClient:
    """One httpx client; `urls` rotate on connection errors (two instances serve the same API)."""

    def __init__(self, deadline: float, rng: random.Random, timeout: float = 20.0) -> None:
        self.http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=32))
        self.deadline, self.rng = deadline, rng

    async def request(self, method: str, urls: list[str], path: str, *, json: dict | None = None,
                      headers: dict | None = None, budget: float | None = None) -> Outcome:
        """Send until a 2xx or a refusal (a 4xx other than 429); raise DeadlineReached when the
        run's deadline (or this call's `budget` of seconds) passes first."""
        deadline = self.deadline if budget is None else min(self.deadline, time.monotonic() + budget)
        outcome = Outcome(None)
        failures = 0
        while True:
            url = urls[failures % len(urls)]
            retry_after = None
            try:
                answer = await self.http.request(method, url + path, json=json, headers=headers)
            except httpx.TransportError:
                outcome.attempts.append("connection")
            else:
                outcome.response = answer
                outcome.statuses.append(answer.status_code)
                if answer.status_code < 400:
                    outcome.attempts.append("accepted")
                    return outcome
                if answer.status_code == 429:
                    outcome.attempts.append("rate_limited")
                    retry_after = _seconds(answer.headers.get("retry-after"))
                elif answer.status_code >= 500:
                    outcome.attempts.append("server_error")
                else:
                    outcome.attempts.append("refused")
                    return outcome
            failures += 1
            pause = retry_after if retry_after is not None else self.rng.uniform(0, min(5.0, 0.1 * 2 ** failures))
            if time.monotonic() + pause > deadline:
                raise DeadlineReached(f"{method} {path}", outcome)
            await asyncio.sleep(pause)

    async def aclose(self) -> None:
        await self.http.aclose()


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
