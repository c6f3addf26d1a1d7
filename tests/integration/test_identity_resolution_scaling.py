"""Two instances of identity-resolution in one consumer group split the partitions and
together produce exactly what one instance does — and what the pure Python rules say."""

from collections import Counter

import pytest
from cohort_shared.state.client import connect_state
from cohort_shared.testing import eventually
from cohort_shared.topics import IDENTITY_MERGES, IDENTITY_PROFILES, MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED
from identity_resolution.adapters.book_store import BookStore
from identity_resolution.app import build_processor
from identity_resolution.domain import apply_record
from identity_resolution.domain.book import Book
from identity_resolution.settings import IdentitySettings
from identity_resolution.testing import (
    A,
    D,
    E,
    add,
    alias_new,
    canonical,
    canonical_rows,
    clock,
    cohort,
    delete,
    identify,
    merge,
    publish,
    read_rows,
    remove,
    track,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTPUT_TOPICS = (MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED, IDENTITY_MERGES, IDENTITY_PROFILES)
WORKSPACES = [f"ws{i}" for i in range(6)]
COHORTS = ["c1", "c2", "c3", "c4"]


def in_workspace(ws, message):
    return message.model_copy(update={"workspace_id": ws})


def phases() -> list[list]:
    """Each phase only starts once the previous one's outputs are out: within a phase the
    outcome does not depend on how partitions interleave."""
    profiles = [
        in_workspace(ws, m)
        for ws in WORKSPACES
        for m in (
            track("t1", E("u1"), E("u2"), E("u3"), E("u4"), D("d1"), D("d2")),
            alias_new("a1", ("email", "a@x.com", "u1"), ("email", "b@x.com", None)),
        )
    ]
    changes = [
        in_workspace(ws, cohort(
            f"r-{c}", add(E("u1")), add(E("u2")), add(E("u3")), add(E("u4")), add(D("d1")), add(D("d2")),
            add(A("email", "a@x.com")), add(A("email", "b@x.com")), add(E("u9")), add(E("null")), remove(E("u2")),
            cohort_id=c,
        ))
        for ws in WORKSPACES
        for c in COHORTS
    ]
    updates = [
        in_workspace(ws, m)
        for ws in WORKSPACES
        for m in (
            track("t2", E("u9")),
            identify("i1", devices=[("u1", "d1")]),
            merge("m1", (E("u3"), E("u4"))),
            delete("x1", E("u2")),
        )
    ]
    return [profiles, changes, updates]


def expected_by_the_rules() -> list[Counter]:
    """What the Python rules emit, cumulatively after each phase."""
    books = {ws: Book(ws) for ws in WORKSPACES}
    seen: Counter = Counter()
    after_each = []
    for phase in phases():
        for message in phase:
            for e in apply_record(books[message.workspace_id], message, clock()).emitted:
                seen[canonical(e.topic, e.key, e.message)] += 1
        after_each.append(Counter(seen))
    return after_each


async def read_outputs(settings, expected: Counter, settle: float) -> Counter:
    got: Counter = Counter()
    for base in OUTPUT_TOPICS:
        want = sum(n for (topic, _, _), n in expected.items() if topic == base)
        for record in await read_rows(settings, base, want, timeout=60, settle=settle):
            got.update(canonical_rows(base, record))
    return got


@pytest.mark.parametrize("instances", [1, 2])
async def test_instances_split_partitions_and_produce_what_one_does(stack_env, kafka_topics, redis_client, instances):
    settings = IdentitySettings(**stack_env)
    handled: Counter = Counter()
    client = connect_state(settings, socket_timeout=10)
    processors = []
    for n in range(instances):
        processor = build_processor(settings, client, BookStore(client, settings.redis_key_prefix, 3), f"i{n}")
        real = processor._run_handlers

        async def counted(ctx, task, instance=f"i{n}", real=real):
            handled[instance] += sum(len(records) for records in task.values())
            await real(ctx, task)

        processor._run_handlers = counted
        processors.append(processor)
    try:
        for processor in processors:
            await processor.start()
        inputs = (settings.topics.identity_events, settings.topics.cohort_changes, settings.topics.identity_forwarded)
        everything = {(topic, p) for topic in inputs for p in range(settings.topic_partitions)}

        async def assignments():  # a processor connects in the background: no consumer yet, no partitions
            return [{(tp.topic, tp.partition) for tp in p.consumer.assignment()} if p.consumer else set()
                    for p in processors]

        def split(sets):  # every instance owns some partitions; each partition one owner
            return all(sets) and sum(len(s) for s in sets) == len(everything) and set().union(*sets) == everything

        await eventually(assignments, until=split, timeout=60)

        expected = expected_by_the_rules()
        for number, phase in enumerate(phases()):
            await publish(settings, phase)
            last = number == len(expected) - 1
            got = await read_outputs(settings, expected[number], settle=1.0 if last else 0.0)
        assert got == expected[-1]
        assert sum(expected[-1].values()) == 396  # 6 workspaces × 66 outputs: the rules are exercised
        assert len(handled) == instances and all(handled.values())
    finally:
        for processor in processors:
            await processor.stop()
        await client.aclose()
