"""The engine's bound on client calls: it gives up on work that will not end, even work that
swallows its cancellation (asyncio.wait_for would wait for that forever)."""

import asyncio

import pytest
from cohort_shared.stream.engine import within


async def test_a_result_in_time_is_returned():
    async def quick():
        return 7

    assert await within(quick(), 1, "quick") == 7


async def test_work_that_outlasts_its_cancellation_is_left_behind():
    async def stubborn():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # as a client's stop() still closing after being cancelled
        return "late"

    clock = asyncio.get_running_loop().time
    started = clock()
    with pytest.raises(TimeoutError, match="stubborn took over"):
        await within(stubborn(), 0.2, "stubborn")
    assert clock() - started < 1.0  # asyncio.wait_for would have waited the 1.5 s out
    await asyncio.sleep(1.5)  # let it end inside this test


async def test_a_failure_in_time_is_raised():
    async def broken():
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await within(broken(), 1, "broken")
