"""delivery's Prometheus metrics."""

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

FANNED_OUT = Counter("delivery_events_queued_total", "Events queued for a webhook (one per matching webhook)")
CONSUMED = Counter("delivery_change_events_total", "membership.changes records read")
DEAD_LETTERS = Counter("delivery_dead_letters_total", "membership.changes records sent to the DLQ")
ATTEMPTS = Counter("delivery_attempts_total", "Delivery attempts by result", ["result"])
LATENCY = Histogram("delivery_latency_seconds", "From the change (occurred_at) to its 2xx",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400))
RETRIES = Counter("delivery_infrastructure_retries_total", "Redis or Kafka failures retried", ["where"])
SENDERS = Gauge("delivery_active_senders", "Webhooks this instance is sending to right now")
LOOP_LAG = Histogram("delivery_event_loop_lag_seconds",
                     "How late a 50 ms timer fires: the time the event loop was blocked (or starved of CPU)",
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
LOOP_TICK_SECONDS = 0.05


async def watch_loop_lag(clock: Callable[[], float] = time.monotonic) -> None:
    """Observe, forever, how late each 50 ms sleep wakes: a blocking call anywhere in the
    process (an agent, a sender, the API) shows here as lag."""
    while True:
        before = clock()
        await asyncio.sleep(LOOP_TICK_SECONDS)
        LOOP_LAG.observe(max(0.0, clock() - before - LOOP_TICK_SECONDS))
