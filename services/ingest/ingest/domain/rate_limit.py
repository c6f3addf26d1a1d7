"""Rate limits: a fixed window per counter — one hour per data import key, and per workspace
and endpoint group for the Braze REST API (docs/braze-rest.md, windows as Braze documents).

A fixed window needs one counter per window (an INCR), where a sliding log would need a
write per request; its cost is a possible burst of up to twice the limit across a window
boundary, which is harmless to Kafka at these limits.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SECONDS = 3600


@dataclass(frozen=True)
class Window:
    """The window `now` falls in: its id and the seconds until the next one starts."""

    window_id: int
    seconds_left: int


def current_window(now_epoch: float, window_seconds: int = WINDOW_SECONDS) -> Window:
    window_id = int(now_epoch // window_seconds)
    ends = (window_id + 1) * window_seconds
    return Window(window_id, max(1, int(ends - now_epoch + 0.999)))


def over_limit(count: int, limit: int) -> bool:
    """`count` is this request's position in its window, itself included."""
    return count > limit


@dataclass(frozen=True)
class Limit:
    """At most `requests` in each window of `window_seconds`."""

    requests: int
    window_seconds: int


@dataclass(frozen=True)
class Quota:
    """What is left of a limit after this request: the X-RateLimit-* headers Braze sends."""

    limit: int
    remaining: int
    reset_epoch: int
    retry_after: int | None
    """None if this request is allowed, else the seconds until it would be."""

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_epoch)}


def quota_after(count: int, limit: Limit, now_epoch: float) -> Quota:
    """The quota once the window's `count`-th request (this one) is counted."""
    window = current_window(now_epoch, limit.window_seconds)
    over = over_limit(count, limit.requests)
    return Quota(limit.requests, max(0, limit.requests - count), (window.window_id + 1) * limit.window_seconds,
                 window.seconds_left if over else None)
