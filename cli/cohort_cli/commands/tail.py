"""`cohort tail`: follow the public `membership.changes` stream (docs/events.md), committed transactions only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated

import typer
from cohort_shared.kafka import make_consumer
from cohort_shared.schemas import MembershipChanged
from cohort_shared.settings import CommonSettings
from pydantic import ValidationError
from rich.markup import escape

from ..render import stderr, stdout

COLOURS = {"added": "green", "removed": "red"}


def format_change(event: MembershipChanged) -> str:
    """One line per event: time, workspace, cohort, user, external ID, change, cause."""
    external = event.external_id if event.external_id is not None else "-"
    return (
        f"{event.occurred_at.isoformat(timespec='milliseconds')}  {event.workspace_id}  "
        f"{event.partner}/{event.cohort_id}  user={event.user_id}  external_id={external}  "
        f"{event.change}  {event.cause}"
    )


def tail_command(
    workspace: Annotated[str | None, typer.Option(help="only this workspace's events")] = None,
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest event kept, not the newest")] = False,
    max_events: Annotated[int | None, typer.Option("--max", min=1, help="stop after this many events")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.0, help="stop after this many seconds")] = None,
) -> None:
    """Print membership changes as they happen (TOPIC_PREFIX and KAFKA_BOOTSTRAP_SERVERS apply)."""
    settings = CommonSettings()
    console = stdout()

    def emit(event: MembershipChanged) -> None:
        line = escape(format_change(event))
        console.print(
            line.replace(f"  {event.change}  ", f"  [{COLOURS[event.change]}]{event.change}[/]  ", 1), soft_wrap=True
        )

    try:
        seen = asyncio.run(tail_changes(settings, emit, workspace, from_beginning, max_events, timeout))
    except KeyboardInterrupt:
        return
    stderr().print(f"{seen:,} events")


async def tail_changes(
    settings: CommonSettings,
    emit: Callable[[MembershipChanged], None],
    workspace: str | None = None,
    from_beginning: bool = False,
    max_events: int | None = None,
    timeout: float | None = None,
) -> int:
    """Read the topic without a consumer group (a tail commits nothing) until `max_events` or `timeout`."""
    consumer = make_consumer(
        settings,
        settings.topics.membership_changes,
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    await consumer.start()
    try:
        while max_events is None or seen < max_events:
            if deadline is not None and time.monotonic() >= deadline:
                break
            batches = await consumer.getmany(timeout_ms=200)
            for record in (r for batch in batches.values() for r in batch):
                try:
                    event = MembershipChanged.model_validate_json(record.value or b"")
                except ValidationError as error:
                    stderr().print(f"skipped offset {record.partition}@{record.offset}: {error.error_count()} errors")
                    continue
                if workspace is not None and event.workspace_id != workspace:
                    continue
                emit(event)
                seen += 1
                if max_events is not None and seen >= max_events:
                    break
    finally:
        await consumer.stop()
    return seen
