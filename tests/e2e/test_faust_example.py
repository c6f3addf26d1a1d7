"""docs/examples/membership_consumer.py runs as documented against the real broker: it sees
every committed change event once, in order per user, and never an aborted one."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from cohort_shared.kafka import ensure_topics
from cohort_shared.settings import CommonSettings
from cohort_shared.testing import unique

from .delivery_helpers import change_event, publish_changes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "membership_consumer.py"


def printed_fields(lines: list[str]) -> list[list[str]]:
    """`event_id cohort_id user_id change` of each printed line (faust's worker logs what
    the app prints, so the fields end the line)."""
    return [line.split()[-4:] for line in list(lines) if len(line.split()) >= 4]


async def test_the_faust_example_consumes_committed_changes(kafka_bootstrap, tmp_path):
    prefix = f"{unique('x')}."
    topic = f"{prefix}membership.changes"
    await ensure_topics(CommonSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_partitions=3), [topic])
    events = [change_event("ws", f"u{i % 3}", "churn", ["added", "removed"][(i // 3) % 2]) for i in range(12)]
    aborted = change_event("ws", "u0", "power")
    await publish_changes(kafka_bootstrap, topic, events[:6])
    await publish_changes(kafka_bootstrap, topic, [aborted], abort=True)
    await publish_changes(kafka_bootstrap, topic, events[6:])

    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "worker", "-l", "warn", "--without-web", cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix,
             "TOPIC_PARTITIONS": "3", "CONSUMER_GROUP": unique("crm"), "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[str] = []
    wanted = {e["event_id"] for e in events}
    try:
        deadline = time.monotonic() + 90
        while not wanted <= {fields[0] for fields in printed_fields(lines)}:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "not every event printed in time:\n" + "".join(lines)
            line = await asyncio.wait_for(worker.stdout.readline(), remaining)
            assert line, "the example exited:\n" + "".join(lines)
            lines.append(line.decode(errors="replace"))
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)
    printed = [fields for fields in printed_fields(lines) if fields[0] in wanted | {aborted["event_id"]}]
    assert [p[0] for p in printed] == [p[0] for p in printed if p[0] != aborted["event_id"]], "an aborted event was read"
    for user in ("u0", "u1", "u2"):
        assert [p[0] for p in printed if p[2] == user] == [e["event_id"] for e in events if e["user_id"] == user]
