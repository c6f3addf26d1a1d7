"""Each check of the suite can fail: crafted bad inputs are counted, good ones are not."""

from __future__ import annotations

from tests.chaos.checks import (
    ReportExpectation,
    alternates_to,
    check_deliveries,
    check_dlq,
    check_events,
    check_members,
    check_report,
    check_stage,
)

EXPECTED = {("u1", "c"): [("added", "cohort_import"), ("removed", "cohort_import")],
            ("u2", "c"): [("added", "cohort_import")],
            ("k", "c"): [("added", "merge")], ("m", "c"): [("added", "cohort_import"), ("removed", "merge")]}


def event(n: int, user: str, change: str, cause: str = "cohort_import") -> dict:
    return {"event_id": f"id{n}", "user_id": user, "cohort_id": "c", "change": change, "cause": cause}


GOOD = [event(1, "u1", "added"), event(2, "u2", "added"), event(3, "u1", "removed"), event(4, "m", "added"),
        event(5, "k", "added", "merge"), event(6, "m", "removed", "merge")]
FINAL = {"c": {"u2", "k"}}


def test_a_faithful_stream_counts_nothing():
    result = check_events(EXPECTED, GOOD, FINAL)
    assert (result.lost, result.unexpected, result.duplicate_event_ids, result.order_violations,
            result.not_replaying) == (0, 0, 0, 0, 0)
    assert result.by_cause == {"cohort_import": (4, 4), "merge": (2, 2)}


def test_a_lost_event_is_counted_and_the_stream_no_longer_replays():
    result = check_events(EXPECTED, [e for e in GOOD if e["event_id"] != "id3"], FINAL)
    assert (result.lost, result.not_replaying, result.order_violations) == (1, 1, 0)


def test_a_repeated_event_id_is_a_duplicate():
    result = check_events(EXPECTED, [*GOOD, GOOD[1]], FINAL)
    assert (result.duplicate_event_ids, result.lost, result.unexpected) == (1, 0, 0)


def test_an_event_emitted_twice_under_a_new_id_is_unexpected():
    result = check_events(EXPECTED, [*GOOD, {**GOOD[1], "event_id": "id9"}], FINAL)
    assert (result.unexpected, result.not_replaying, result.order_violations) == (1, 1, 0)


def test_reordered_events_are_an_order_violation():
    swapped = [GOOD[2], GOOD[1], GOOD[0], *GOOD[3:]]
    result = check_events(EXPECTED, swapped, FINAL)
    assert (result.order_violations, result.not_replaying, result.lost) == (1, 1, 0)
    merge_first = [*GOOD[:3], GOOD[5], GOOD[4], GOOD[3]]  # the merged profile's removal before its add
    assert check_events(EXPECTED, merge_first, FINAL).order_violations == 1


def test_events_must_end_in_the_final_state():
    assert check_events(EXPECTED, GOOD, {"c": {"k"}}).not_replaying == 1
    assert alternates_to(["added", "removed", "added"], True)
    assert not alternates_to(["removed"], False)


def test_members():
    assert check_members({"a", "b"}, ["a", "b"]).missing == 0
    result = check_members({"a", "b"}, ["a", "c", "c"])
    assert (result.missing, result.unexpected, result.listed_twice) == (1, 1, 1)


def test_sync_report_ranges():
    expected = ReportExpectation(applied=5, received=(10, 12), already_in_state=(2, 3),
                                 unmatched={"unknown_external_id": (1, 2)})
    good = {"received": 11, "applied": 5, "already_in_state": 2, "unmatched": {"unknown_external_id": 2}}
    assert check_report(expected, good) == []
    bad = {"received": 9, "applied": 4, "already_in_state": 2, "unmatched": {"unknown_alias": 1}}
    assert len(check_report(expected, bad)) == 4
    assert check_report(expected, None) == ["no sync report"]


def test_dlq_holds_exactly_the_poison():
    injected = {"t1": b"p1", "t2": b"p2"}
    assert check_dlq(injected, {"t1": [(b"p1", "a")], "t2": [(b"p2", "a")]}).missing == 0
    result = check_dlq(injected, {"t1": [(b"p1", "a"), (b"p1", "a"), (b"real data", "a")]})
    assert (result.missing, result.repeated, result.foreign) == (1, 1, 1)


def test_a_topic_two_services_read_is_dead_lettered_once_by_each():
    both = check_dlq({"t1": b"p1"}, {"t1": [(b"p1", "segment-store"), (b"p1", "ingest")]})
    assert (both.missing, both.repeated, both.foreign) == (0, 0, 0)


def test_stage_outputs_outside_their_range_or_twice_are_counted():
    assert check_stage({"c": (3, 4)}, {"c": ["r:0", "r:1", "r:2"]}).outside_range == {}
    result = check_stage({"c": (3, 4), "d": (1, 1)}, {"c": ["r:0", "r:0"], "d": ["q:0"]})
    assert result.outside_range == {"c": (1, (3, 4))} and result.published_twice == 1


def delivered(*events: dict, webhook_id: str | None = None) -> list[tuple[str, dict]]:
    return [(webhook_id or e["event_id"], e) for e in events]


def test_every_event_delivered_in_user_order_counts_nothing_but_duplicates():
    received = delivered(GOOD[1], GOOD[0], GOOD[2], GOOD[0], *GOOD[3:])  # users interleave; u1 delivered twice
    result = check_deliveries(GOOD, received)
    assert (result.events, result.delivered, result.missing, result.unexpected, result.mismatched_ids,
            result.order_violations, result.duplicates) == (6, 6, 0, 0, 0, 0, 1)


def test_a_missing_delivery_a_foreign_one_a_wrong_id_and_a_reordering_are_each_counted():
    assert check_deliveries(GOOD, delivered(*GOOD[1:])).missing == 1
    assert check_deliveries(GOOD, delivered(*GOOD, event(9, "u9", "added"))).unexpected == 1
    assert check_deliveries(GOOD, delivered(*GOOD) + delivered(GOOD[0], webhook_id="id2")).mismatched_ids == 1
    reordered = delivered(GOOD[2], GOOD[0], GOOD[1], *GOOD[3:])  # u1's removal before its add
    assert check_deliveries(GOOD, reordered).order_violations == 1

