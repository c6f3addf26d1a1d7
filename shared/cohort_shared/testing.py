"""Helpers for tests on the real Kafka and Redis: unique names, reading topics back, and
waiting with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A fresh name for a topic prefix, consumer group or key prefix."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 20.0, settle: float = 0.0
) -> list[ConsumerRecord]:
    """Read `topic` from the start (committed transactions only) until `expected` records have
    come or `timeout` passed; then keep reading `settle` seconds more, so a test can see
    records that should not be there."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool] = bool, timeout: float = 20.0, every: float = 0.05
) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s; last result: {result!r}")
        await asyncio.sleep(every)
