"""The rate limit per data import key (docs/producer-api.md): a fixed one-hour window.

A fixed window needs one counter per key per hour (an INCR), where a sliding log would
need a write per request; its cost is a possible burst of up to twice the limit across
a window boundary, which at 250,000 an hour is harmless to Kafka.
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
