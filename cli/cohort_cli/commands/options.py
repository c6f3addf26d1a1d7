"""Options more than one command takes."""

from __future__ import annotations

from typing import Annotated

import typer

from ..backoff import RetryPolicy

Concurrency = Annotated[int, typer.Option(min=1, max=64, help="requests in flight at once")]
MaxAttempts = Annotated[int, typer.Option(min=1, help="tries per request before giving up (5xx, 429, no answer)")]
RetryBaseDelay = Annotated[
    float, typer.Option(min=0.0, help="first retry waits about this many seconds; each later one doubles")
]


def retry_policy(max_attempts: int, retry_base_delay: float) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, base_delay=retry_base_delay)
