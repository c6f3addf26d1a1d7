"""`cohort tail`: the line format, and one run against the real broker (integration)."""

import asyncio
from datetime import UTC, datetime

import pytest
from cohort_cli.commands.tail import format_change
from cohort_cli.main import app
from cohort_shared.kafka import make_producer
from cohort_shared.schemas import MembershipChanged
from typer.testing import CliRunner


def change(n: int, workspace: str = "demo", external_id: str | None = "u1", kind: str = "added") -> MembershipChanged:
    return MembershipChanged(
        event_id=f"ev{n}",
        workspace_id=workspace,
        partner="mixpanel",
        cohort_id="mp_1",
        user_id=f"usr_{n}",
        external_id=external_id,
        change=kind,
        cause="cohort_import",
        occurred_at=datetime(2026, 1, 21, 10, 0, n, tzinfo=UTC),
    )


def test_one_line_per_event_with_every_field():
    assert format_change(change(1)) == (
        "2026-01-21T10:00:01.000+00:00  demo  mixpanel/mp_1  user=usr_1  external_id=u1  added  cohort_import"
    )
    assert "external_id=-  removed" in format_change(change(2, external_id=None, kind="removed"))


@pytest.mark.integration
async def test_tail_prints_committed_events_of_one_workspace(stack_env, kafka_topics, common_settings):
    producer = make_producer(common_settings)
    await producer.start()
    try:
        for event in (change(1), change(2, workspace="other"), change(3, kind="removed")):
            await producer.send_and_wait(
                common_settings.topics.membership_changes, event.to_bytes(), key=event.kafka_key()
            )
    finally:
        await producer.stop()
    args = ["tail", "--workspace", "demo", "--from-beginning", "--max", "2", "--timeout", "30"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=stack_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Two users, two partitions: order holds per user only.
    assert sorted(line.split("  ")[3] for line in lines) == ["user=usr_1", "user=usr_3"]
    assert "2 events" in result.stderr
