"""The rule table against the pure Python rules (the same table runs through the book store
on a real Redis in tests/integration/test_identity_resolution_rules.py)."""

import pytest
from cohort_shared.schemas import MembershipResolved, MembershipUnmatched
from identity_resolution.domain import apply_record
from identity_resolution.domain.book import Book
from identity_resolution.domain.identifiers import parse_user_ref
from identity_resolution.testing import WS, clock, load_rule_table, summarize, summarize_profile

SCENARIOS = load_rule_table()


def check_tally(applied) -> None:
    """The tally the metrics read agrees with the outputs."""
    messages = [e.message for e in applied.emitted]
    resolved = [m for m in messages if isinstance(m, MembershipResolved)]
    unmatched = [m for m in messages if isinstance(m, MembershipUnmatched)]
    assert applied.tally.resolved == sum(not m.was_parked for m in resolved)
    assert applied.tally.drained == sum(m.was_parked for m in resolved)
    assert applied.tally.parked == sum(m.parked_until is not None for m in unmatched)
    assert sum(applied.tally.unmatched.values()) == len(unmatched)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.rule for s in SCENARIOS])
def test_rule(scenario):
    book = Book(WS)
    for number, step in enumerate(scenario.steps):
        applied = apply_record(book, step.message, clock(step.after_seconds))
        assert summarize(applied.emitted) == step.expect, f"step {number}"
        assert dict(applied.tally.skipped) == step.skipped, f"step {number}"
        check_tally(applied)
    for ref, expected in scenario.lookups.items():
        assert summarize_profile(book.holder(parse_user_ref(ref))) == expected, ref


def test_every_unmatched_reason_and_skip_reason_is_in_the_table():
    reasons, skips = set(), set()
    for scenario in SCENARIOS:
        for step in scenario.steps:
            reasons |= {t[-1] for t in step.expect if t[0] in ("parked", "unmatched")}
            skips |= set(step.skipped)
    assert reasons == {
        "unknown_external_id", "unknown_alias", "unknown_device_id", "device_id_of_identified_user", "invalid_identifier",
    }
    assert skips == {
        "invalid_identifier", "unknown_external_id", "unknown_alias", "unknown_device_id",
        "same_profile", "alias_of_other_user", "already_identified",
    }
