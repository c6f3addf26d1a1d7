"""identity-resolution's stream on the real Kafka and Redis: records in, batched rows out on
their users' partitions; unknown identifiers parked by their workspace's book and applied
when their user appears; poison to the DLQ; a batch whose Kafka commit failed published once."""

import pytest
from cohort_shared.publishing import partition_for
from cohort_shared.schemas import cohort_key, decode
from cohort_shared.state.client import connect_state
from cohort_shared.testing import read_topic
from cohort_shared.topics import IDENTITY_PROFILES, MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED, dlq_name
from identity_resolution.adapters.book_store import BookStore
from identity_resolution.app import build_processor
from identity_resolution.settings import IdentitySettings
from identity_resolution.testing import (
    PARTNER,
    WS,
    A,
    D,
    E,
    add,
    alias_new,
    canonical_rows,
    cohort,
    identify,
    publish,
    read_rows,
    remove,
    track,
    user,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack_env) -> IdentitySettings:
    return IdentitySettings(**stack_env)


@pytest.fixture
async def processors(settings, kafka_topics):
    """Starts processors of the service's consumer group; stops them after the test."""
    started, client = [], connect_state(settings, socket_timeout=10)

    async def start(instance_id: str = "i1"):
        processor = build_processor(settings, client, BookStore(client, settings.redis_key_prefix, 3), instance_id)
        await processor.start()
        started.append(processor)
        return processor

    yield start
    for processor in started:
        await processor.stop()
    await client.aclose()


def rows(settings, base: str, records) -> list[tuple]:
    return [row for r in records for row in canonical_rows(base, r)]


async def test_changes_in_rows_out_parked_ones_applied_when_their_user_appears(settings, processors):
    topics = settings.topics
    await processors()
    await publish(settings, [track("t1", E("u1"), D("d1")), alias_new("a1", ("email", "a@x.com", None))])
    await read_topic(settings.kafka_bootstrap_servers, topics.identity_profiles, expected=3)

    c2_key = cohort_key(WS, PARTNER, "c2")
    await publish(settings, [
        cohort("c1", add(E("u1")), add(D("d1")), add(A("email", "a@x.com")), remove(E("u2")), add(E("null"))),
        (topics.cohort_changes, c2_key, b"{not json"),
        (topics.cohort_changes, c2_key, b'{"type": "cohort_changes_accepted", "workspace_id": "acme"}'),
        cohort("c2", add(E("u1")), cohort_id="c2"),  # same partition, after the poison
    ])
    unmatched = await read_rows(settings, MEMBERSHIP_UNMATCHED, 2)
    await read_rows(settings, MEMBERSHIP_RESOLVED, 4)
    await publish(settings, [track("t2", E("u2"))])  # u2 appears: its parked removal applies
    resolved = await read_rows(settings, MEMBERSHIP_RESOLVED, 5, settle=1.0)

    for record in resolved:  # each batch on the partition of every user in it
        batch = decode("membership.resolved", record.value)
        assert {partition_for(row[2].encode(), 3) for row in batch.rows} == {record.partition}
    assert sorted(row[2][2:] for row in rows(settings, MEMBERSHIP_RESOLVED, resolved)) == sorted([
        ("c1", user("t1"), "u1", "add", "c1:0", False),
        ("c1", user("t1", 1), None, "add", "c1:1", False),
        ("c1", user("a1"), None, "add", "c1:2", False),
        ("c2", user("t1"), "u1", "add", "c2:0", False),
        ("c1", user("t2"), "u2", "remove", "c1:3", True),
    ])
    assert sorted((row[1], row[2][3:]) for row in rows(settings, MEMBERSHIP_UNMATCHED, unmatched)) == sorted([
        (cohort_key(WS, PARTNER, "c1").decode(),
         ("external_id", "u2", None, "remove", "unknown_external_id", "c1:3", True)),
        (cohort_key(WS, PARTNER, "c1").decode(),
         ("external_id", "null", None, "add", "invalid_identifier", "c1:4", False)),
    ])
    dead = await read_topic(settings.kafka_bootstrap_servers, dlq_name(topics.cohort_changes), expected=2)
    assert [r.value for r in dead] == [b"{not json", b'{"type": "cohort_changes_accepted", "workspace_id": "acme"}']
    assert all(dict(r.headers)["dlq.reason"].startswith(b"invalid cohort.changes record") for r in dead)
    assert all(r.key == c2_key for r in dead)


async def test_a_batch_whose_kafka_commit_failed_is_published_once(settings, processors):
    """The book's Redis commit went through (parked changes, profiles), the Kafka commit did
    not: the batch comes round again and its stored outputs go out, once."""
    topics = settings.topics
    processor = await processors()
    real, failed = processor._publish_and_commit, []

    async def fail_once_per_topic(outputs, offsets):
        new = {tp.topic for tp in offsets} - set(failed)
        if outputs and new:
            failed.extend(new)
            raise ConnectionError("the broker went away after the Redis commit")
        await real(outputs, offsets)

    processor._publish_and_commit = fail_once_per_topic
    await publish(settings, [cohort("c1", add(E("u5")), add(E("u6")))])
    await read_rows(settings, MEMBERSHIP_UNMATCHED, 2)
    await publish(settings, [track("t1", E("u5"), E("u6")), identify("i1", devices=[("u5", "nothing")])])

    resolved = await read_rows(settings, MEMBERSHIP_RESOLVED, 2, settle=1.5)
    profiles = await read_rows(settings, IDENTITY_PROFILES, 2, settle=0.5)
    unmatched = await read_rows(settings, MEMBERSHIP_UNMATCHED, 2, settle=0.5)
    assert {topics.cohort_changes, topics.identity_events, topics.identity_forwarded} <= set(failed)
    assert sorted(row[2][6] for row in rows(settings, MEMBERSHIP_RESOLVED, resolved)) == ["c1:0", "c1:1"]
    assert len(profiles) == 2 and len(rows(settings, MEMBERSHIP_UNMATCHED, unmatched)) == 2
