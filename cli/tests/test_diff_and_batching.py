from datetime import UTC, datetime

import pytest
from cohort_cli.identifiers import Change, Identifier
from cohort_cli.producer.batching import batch_changes
from cohort_cli.producer.diff import diff_members

U1, U2, U3 = (Identifier.external_id(f"u{i}") for i in (1, 2, 3))
D1 = Identifier.device_id("d1")
A1 = Identifier.alias("a@x.com", "email")
OLD = datetime(2009, 6, 1, tzinfo=UTC)


def test_first_sync_adds_every_member_in_export_order():
    diff = diff_members(None, {U2: None, D1: OLD, A1: None})
    assert diff.removes == []
    assert diff.adds == [Change(U2), Change(D1, False, OLD), Change(A1)]


def test_later_syncs_send_only_the_difference():
    diff = diff_members(frozenset({U1, U2, A1}), {U2: None, U3: None, D1: None})
    assert [c.identifier for c in diff.adds] == [U3, D1]
    assert diff.removes == [Change(A1, True), Change(U1, True)]
    assert diff.size == 4


def test_an_unchanged_cohort_sends_nothing():
    assert diff_members(frozenset({U1}), {U1: None}).size == 0


def many(count: int, kind: str = "external_id") -> list[Change]:
    if kind == "alias":
        return [Change(Identifier.alias(f"a{i}@x.com", "email")) for i in range(count)]
    return [Change(Identifier(kind, f"{kind[0]}{i}")) for i in range(count)]


def test_batches_hold_at_most_1000_identifiers_whatever_their_kind():
    changes = many(700) + many(700, "device_id") + many(601, "alias")
    batches = batch_changes(changes)
    assert [b.identifiers for b in batches] == [1000, 1000, 1]
    for batch in batches:
        counted = sum(
            len(e.get("user_ids", [])) + len(e.get("device_ids", [])) + len(e.get("aliases", [])) for e in batch.entries
        )
        assert counted == batch.identifiers <= 1000
    first = batches[0].entries
    assert len(first) == 1 and len(first[0]["user_ids"]) == 700 and len(first[0]["device_ids"]) == 300
    assert batches[1].entries[0]["aliases"][0] == {"alias_name": "a0@x.com", "alias_label": "email"}


def test_exactly_1000_identifiers_make_one_request():
    assert [b.identifiers for b in batch_changes(many(1000))] == [1000]
    assert batch_changes([]) == []


def test_entries_split_by_removal_and_timestamp():
    changes = [Change(U1), Change(U2, True), Change(D1, False, OLD), Change(U3)]
    [batch] = batch_changes(changes)
    assert batch.entries == [
        {"user_ids": ["u1", "u3"]},
        {"device_ids": ["d1"], "timestamp": "2009-06-01T00:00:00+00:00"},
        {"user_ids": ["u2"], "should_remove": True},
    ]


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError):
        batch_changes(many(1), limit=0)
