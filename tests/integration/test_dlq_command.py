"""`cohort dlq` on the real broker: list and inspect dead letters, replay them to their source
topic after a fix, each exactly once, stopping at one that still does not decode."""

from __future__ import annotations

import asyncio
import json

import pytest
from cohort_cli.dead_letters import REPLAYED_FROM, read_dead_letters, replay_dead_letters
from cohort_cli.main import app
from cohort_shared import examples
from cohort_shared.kafka import ensure_topics, make_producer
from cohort_shared.settings import CommonSettings
from cohort_shared.testing import read_topic
from cohort_shared.topics import COHORT_META, dlq_name
from typer.testing import CliRunner

pytestmark = pytest.mark.integration
GARBAGE = b"\xff not json"


async def _dead_letter(settings: CommonSettings, source: str, value: bytes, offset: int) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        headers = [("dlq.reason", b"invalid cohort.meta record: not valid JSON"), ("dlq.source.topic", source.encode()),
                   ("dlq.source.partition", b"0"), ("dlq.source.offset", str(offset).encode()),
                   ("dlq.service", b"segment-store")]
        await producer.send_and_wait(dlq_name(source), value, key=b"acme\x1fmixpanel\x1fmp_1", partition=0,
                                     headers=headers)
    finally:
        await producer.stop()


@pytest.fixture
async def dead_letters(stack_env: dict[str, str]) -> CommonSettings:
    """cohort.meta's DLQ holding garbage at offset 0, then a record today's schema reads."""
    settings = CommonSettings(**{**stack_env, "TOPIC_PARTITIONS": "1"})
    source = settings.topics.cohort_meta
    await ensure_topics(settings, [source, dlq_name(source)])
    await _dead_letter(settings, source, GARBAGE, 7)
    await _dead_letter(settings, source, examples.EXAMPLES[COHORT_META][0].to_bytes(), 8)
    return settings


async def test_list_and_inspect_show_origin_reason_and_bytes(dead_letters: CommonSettings, stack_env) -> None:
    topics = [dlq_name(dead_letters.topics.cohort_meta)]
    letters = await read_dead_letters(dead_letters, topics)
    assert [(d.offset, d.source_topic, d.headers["dlq.source.offset"]) for d in letters] == [
        (0, dead_letters.topics.cohort_meta, "7"), (1, dead_letters.topics.cohort_meta, "8")]
    env = {**stack_env, "TOPIC_PARTITIONS": "1"}

    async def cohort(*args: str):  # the CLI runs its own event loop, so in a thread of its own
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)

    listed = await cohort("--json", "dlq", "list", "--topic", COHORT_META)
    assert listed.exit_code == 0, listed.output
    assert [row["reason"] for row in json.loads(listed.output)["dead_letters"]] == [
        "invalid cohort.meta record: not valid JSON"] * 2
    shown = await cohort("--json", "dlq", "inspect", topics[0], "0", "1")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["decodes_now"] is True and body["value"].startswith('{"type":"cohort_named"')
    garbage = json.loads((await cohort("--json", "dlq", "inspect", topics[0], "0", "0")).output)
    assert garbage["decodes_now"] is False and garbage["value"].startswith("base64:")
    missing = await cohort("dlq", "inspect", topics[0], "0", "5")
    assert missing.exit_code == 1


async def test_replay_stops_at_a_record_still_invalid_then_sends_each_once(dead_letters: CommonSettings) -> None:
    topics = [dlq_name(dead_letters.topics.cohort_meta)]
    blocked = await replay_dead_letters(dead_letters, topics)
    assert blocked.replayed == [] and [d.offset for d, _ in blocked.blocked] == [0]

    stepped = await replay_dead_letters(dead_letters, topics, skip_invalid=True)
    assert [d.offset for d, _ in stepped.skipped] == [0] and [d.offset for d in stepped.replayed] == [1]
    again = await replay_dead_letters(dead_letters, topics, skip_invalid=True)
    assert again.replayed == [] and again.skipped == [] and again.blocked == []

    records = await read_topic(dead_letters.kafka_bootstrap_servers, dead_letters.topics.cohort_meta,
                               expected=2, timeout=5, settle=1)
    assert len(records) == 1, "each dead letter goes back exactly once"
    (record,) = records
    assert record.value == examples.EXAMPLES[COHORT_META][0].to_bytes() and record.key == b"acme\x1fmixpanel\x1fmp_1"
    assert dict(record.headers)[REPLAYED_FROM] == f"{topics[0]}[0]@1".encode()
