"""The live feed: membership.changes as they are committed, for one workspace.

Each open feed is a consumer of its own without a group (it commits nothing and takes no
partitions from anyone), starting at the end of the topic and reading committed
transactions only, so an event aborted by a crashed producer never shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

import orjson
from cohort_shared.kafka import make_consumer

from ..settings import ConsoleSettings

log = logging.getLogger(__name__)
ASSIGNMENT_WAIT_SECONDS = 10.0  # the topic exists once the services ran; if not, go on and wait for it


class ChangeFeed(Protocol):
    def follow(self, ws: str) -> AsyncIterator[dict | None]:
        """The workspace's membership changes as they come; None now and then when none came
        (so the caller can send a heartbeat and notice a closed connection)."""
        ...


class KafkaChangeFeed:
    """Follows `membership.changes` on Kafka with read_committed isolation."""

    def __init__(self, settings: ConsoleSettings, poll_ms: int = 1000) -> None:
        self.settings, self.poll_ms = settings, poll_ms

    async def follow(self, ws: str) -> AsyncIterator[dict | None]:
        consumer = make_consumer(self.settings, self.settings.topics.membership_changes, group_id=None,
                                 auto_offset_reset="latest", isolation_level="read_committed")
        await consumer.start()
        try:
            # Every partition assigned and positioned at its end before saying "ready", so no
            # change committed after that is missed (a consumer positions itself lazily).
            for _ in range(int(ASSIGNMENT_WAIT_SECONDS / 0.05)):
                if consumer.assignment():
                    break
                await asyncio.sleep(0.05)
            for partition in consumer.assignment():
                await consumer.position(partition)
            yield None  # ready: events from here on will show
            while True:
                batches = await consumer.getmany(timeout_ms=self.poll_ms)
                shown = 0
                for record in (r for batch in batches.values() for r in batch):
                    try:
                        event = orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        log.warning("skipped an unreadable event at %s@%s", record.partition, record.offset)
                        continue
                    if isinstance(event, dict) and event.get("workspace_id") == ws:
                        shown += 1
                        yield event
                if not shown:
                    yield None
        finally:
            await consumer.stop()


class InMemoryChangeFeed:
    """A feed tests fill by hand."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    async def follow(self, ws: str) -> AsyncIterator[dict | None]:
        yield None
        for event in self.events:
            if event.get("workspace_id") == ws:
                yield event
