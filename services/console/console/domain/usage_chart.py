"""Usage over time as a bar chart: hourly data points in, bars to draw as SVG out (pure, so a
test can check the geometry without a browser)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 56, 28, 12


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Chart:
    """Bars of one period each, and the value the top of the plot stands for."""

    bars: list[Bar]
    top_value: int
    period: str  # "hour" or "day"
    total: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = BOTTOM
    top: int = TOP


def bucket_usage(hours: list[dict], now: datetime, span_hours: int) -> tuple[list[tuple[datetime, int]], str]:
    """Data points per hour over the last `span_hours` hours up to `now`, or per day when that
    is more than two days; every period present, empty ones as 0, oldest first."""
    per_day = span_hours > 48
    counts: Counter = Counter()
    for entry in hours:
        when = datetime.fromisoformat(entry["hour"].replace("Z", "+00:00")).astimezone(UTC)
        counts[_start(when, per_day)] += int(entry["data_points"])
    step = timedelta(days=1) if per_day else timedelta(hours=1)
    last = _start(now.astimezone(UTC), per_day)
    periods = span_hours // 24 if per_day else span_hours
    starts = [last - step * i for i in range(periods - 1, -1, -1)]
    return [(start, counts.get(start, 0)) for start in starts], "day" if per_day else "hour"


def _start(when: datetime, per_day: bool) -> datetime:
    when = when.replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0) if per_day else when


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k at or above `value` (at least 1), for the axis."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def chart(series: list[tuple[datetime, int]], period: str) -> Chart:
    """Bars scaled to the plot; each labelled with its period's start."""
    top_value = nice_ceiling(max((v for _, v in series), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(series))
    bars = []
    for i, (start, value) in enumerate(series):
        h = plot_h * value / top_value
        label = start.strftime("%b %d") if period == "day" else start.strftime("%d %H:00")
        bars.append(Bar(LEFT + i * slot + slot * 0.1, TOP + plot_h - h, slot * 0.8, h, label, value))
    return Chart(bars, top_value, period, sum(v for _, v in series))
