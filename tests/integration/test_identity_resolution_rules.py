"""Every rule of the table (services/identity_resolution/tests/rule_table.py) through the book's
store on the real Redis: loading the part of the book a step needs and saving what the rules
changed must give, step after step, exactly what the rules give on a book kept in memory; and
the direct path's read of the book must match every identifier named so far as the book in
memory does."""

import pytest
from aiokafka import TopicPartition
from cohort_shared.schemas import CohortChangesAccepted
from cohort_shared.state.client import connect_state
from cohort_shared.state.commit import Commit
from cohort_shared.state.lua_script import ScriptCalls
from cohort_shared.state.writes import WriteSet
from identity_resolution.adapters.book_store import BookStore, ProfileFinder, book_partition
from identity_resolution.domain import apply_record
from identity_resolution.domain.book import Book
from identity_resolution.domain.identifiers import parse_user_ref
from identity_resolution.domain.identity_ops import named_identifiers
from identity_resolution.domain.matching import match
from identity_resolution.testing import WINDOW, WS, clock, load_rule_table, summarize, summarize_profile

pytestmark = pytest.mark.integration

SCENARIOS = load_rule_table()


@pytest.fixture
async def store(common_settings):
    client = connect_state(common_settings, socket_timeout=5)
    yield BookStore(client, common_settings.redis_key_prefix, 3)
    async for key in client.scan_iter(match=f"{common_settings.redis_key_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


def matched_in(book: Book, identifiers: list) -> list[tuple]:
    """What matching finds for each identifier: the profile's IDs, or the reason there is none."""
    found = [match(book, identifier) for identifier in identifiers]
    return [(f.reason, f.profile and (f.profile.user_id, f.profile.external_id)) for f in found]


async def matched(store: BookStore, identifiers: list) -> list[tuple]:
    """The same through the direct path's read of the book (`for_matching`), which reads no
    profile named only by an external ID."""
    return matched_in(await store.for_matching(WS, identifiers), identifiers)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.rule for s in SCENARIOS])
async def test_rule_through_the_store(scenario, store):
    commit = Commit(store.client)
    await commit.ensure_loaded()
    task = store.layout(WS).task
    await commit.claim(task, "test")
    in_memory = Book(WS)
    named: list = []
    for offset, step in enumerate(scenario.steps):
        message = step.message
        identifiers = ([c.identifier() for c in message.changes] if isinstance(message, CohortChangesAccepted)
                       else named_identifiers(message))
        book = await store.load(WS, identifiers, with_parking=True)
        applied = apply_record(book, message, clock(step.after_seconds))
        writes = WriteSet()
        store.save(book, writes, WINDOW)
        calls = ScriptCalls(store.client)
        commit.queue(calls, task, "test", {TopicPartition("steps", book_partition(WS, 3)): (offset, offset)}, writes, [])
        assert await calls.run() == [1]
        expected = apply_record(in_memory, message, clock(step.after_seconds))
        assert summarize(applied.emitted) == summarize(expected.emitted) == step.expect, f"step {offset}"
        assert applied.tally == expected.tally, f"step {offset}"
        named += identifiers
        assert await matched(store, named) == matched_in(in_memory, named), f"step {offset}"
    for ref, profile in scenario.lookups.items():
        found = await ProfileFinder(store).find(WS, parse_user_ref(ref))
        assert summarize_profile(found) == profile, ref
