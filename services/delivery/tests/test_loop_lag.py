"""The event-loop lag watch: a call that blocks the loop shows as a late tick."""

import asyncio
import time

from cohort_shared.testing import eventually
from delivery.metrics import LOOP_LAG, watch_loop_lag


async def _now(value):
    return value


def late_ticks(over: float) -> float:
    buckets = {s.labels["le"]: s.value for s in next(iter(LOOP_LAG.collect())).samples if s.name.endswith("_bucket")}
    return buckets["+Inf"] - buckets[str(over)]


async def test_a_blocking_call_shows_as_a_late_tick():
    watch = asyncio.create_task(watch_loop_lag())
    try:
        await asyncio.sleep(0.01)  # the watch is asleep on its tick
        before = late_ticks(0.25)
        time.sleep(0.4)  # noqa: ASYNC251 - the blocking call the watch must see
        # (> rather than == 1 more: a loaded machine may starve the loop at another moment too)
        await eventually(lambda: _now(late_ticks(0.25)), until=lambda n: n > before, timeout=5)
    finally:
        watch.cancel()
