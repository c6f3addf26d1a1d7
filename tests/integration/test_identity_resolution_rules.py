"""The rule table against `identity.lua` on the real Redis: the same outputs as the pure
Python rules, output for output, and a replayed call changes nothing."""

import pytest
from cohort_shared.redis_store import KeySpace
from cohort_shared.schemas import CohortChangesAccepted
from cohort_shared.testing import owned_track
from cohort_shared.topics import COHORT_CHANGES, IDENTITY_EVENTS
from identity_resolution.adapters.identity_script import IdentityScript, parse_applied
from identity_resolution.adapters.profile_reader import ProfileReader
from identity_resolution.domain import apply_record
from identity_resolution.domain.book import Book
from identity_resolution.domain.identifiers import parse_user_ref
from identity_resolution.entrypoints.stream import SERVICE
from identity_resolution.testing import WS, clock, load_rule_table, summarize, summarize_profile

pytestmark = pytest.mark.integration

SCENARIOS = load_rule_table()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.rule for s in SCENARIOS])
async def test_rule_in_lua(scenario, common_settings, redis_client):
    keys = KeySpace(common_settings.redis_key_prefix, SERVICE)
    script = IdentityScript(redis_client, keys)
    await script.ensure_loaded()
    tracking_key = keys.workspace(WS, "eos", "rule-table", "0")
    tracking = await owned_track(redis_client, keys, "rule-table", tracking_key)
    book = Book(WS)

    async def call(offset, step):
        topic = COHORT_CHANGES if isinstance(step.message, CohortChangesAccepted) else IDENTITY_EVENTS
        pipe = redis_client.pipeline(transaction=False)
        script.queue(pipe, tracking, offset, topic, step.message, clock(step.after_seconds))
        (raw,) = await pipe.execute()
        return raw

    for offset, step in enumerate(scenario.steps):
        raw = await call(offset, step)
        applied = parse_applied(raw)
        assert summarize(applied.emitted) == step.expect, f"step {offset}"
        assert dict(applied.tally.skipped) == step.skipped, f"step {offset}"
        python = apply_record(book, step.message, clock(step.after_seconds))
        assert applied.emitted == python.emitted, f"step {offset}: Lua and Python disagree"
        assert applied.tally == python.tally, f"step {offset}: Lua and Python disagree"
        assert await call(offset, step) == raw, f"step {offset}: a replay must hand back the same outputs"

    reader = ProfileReader(redis_client, keys)
    for ref, expected in scenario.lookups.items():
        found = await reader.find(WS, parse_user_ref(ref))
        assert summarize_profile(found) == expected, ref
        assert found == book.holder(parse_user_ref(ref)), ref
