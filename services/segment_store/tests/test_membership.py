"""The membership rules on a slice: which changes are effective and counted how, the three
steps of a merge, a deletion, and late input for a profile that is gone."""

from segment_store.domain.membership import (
    MERGED,
    TOMBSTONED,
    Change,
    Gone,
    ImportedChange,
    Slice,
    Wait,
    accepts_profile_update,
    announce_merge,
    apply_import,
    delete,
    finish_merge,
    handover_arrived,
    hold,
    merge_gains,
    receive_handover,
    start_merge,
)

A, B, C = ("amplitude", "c"), ("mixpanel", "a"), ("mixpanel", "b")


def imported(s: Slice, cohort, user, change, source="s"):
    return apply_import(s, ImportedChange(cohort, user, change, source))


def test_an_add_of_a_member_or_a_remove_of_a_non_member_is_counted_not_applied():
    s = Slice("ws")
    assert imported(s, A, "u1", "add") == Change(A, "u1", "added", "cohort_import", "s")
    assert imported(s, A, "u1", "add") is None
    assert imported(s, A, "u2", "remove") is None
    assert imported(s, A, "u1", "remove", "t") == Change(A, "u1", "removed", "cohort_import", "t")
    assert s.counters[A, "ap"] == 2 and s.counters[A, "al"] == 2 and s.counters[A, "mc"] == 0
    assert s.usage == 2
    assert s.flips == {(A, "u1"): False}


def test_a_merge_hands_over_then_the_kept_profile_joins_then_the_merged_one_leaves():
    merged_side, kept_side = Slice("ws"), Slice("ws")
    for cohort in (A, B):
        imported(merged_side, cohort, "merged", "add")
    imported(kept_side, B, "kept", "add")
    handed = start_merge(merged_side, "merged", "kept")
    assert handed == [A, B] and merged_side.gone["merged"] == Gone(MERGED, "kept")
    assert receive_handover(kept_side, "kept", handed, "m1") == [Change(A, "kept", "added", "merge", "m1")]
    assert finish_merge(merged_side, "merged", handed, "m1") == [
        Change(A, "merged", "removed", "merge", "m1"), Change(B, "merged", "removed", "merge", "m1")]
    assert kept_side.cohorts("kept") == {A, B} and not merged_side.cohorts("merged")
    assert kept_side.usage == 1 and kept_side.counters[A, "ap"] == 0  # merges are free
    assert start_merge(merged_side, "merged", "other") is None  # gone already: nothing


def test_merge_gains_are_the_merged_cohorts_the_kept_profile_lacks():
    assert merge_gains({B}, [A, B, C]) == [A, C]
    assert merge_gains(set(), []) == []


def test_a_handover_to_a_profile_merged_itself_goes_on_and_to_a_deleted_one_adds_nothing():
    s = Slice("ws", gone={"k1": Gone(MERGED, "k2"), "k3": Gone("d")})
    assert receive_handover(s, "k1", [A], "m") == "k2"
    assert receive_handover(s, "k3", [A], "m") is None and not s.flips


def test_a_deletion_removes_every_membership_once():
    s = Slice("ws")
    imported(s, A, "u1", "add")
    imported(s, C, "u1", "add")
    assert delete(s, "u1", "d1") == [Change(A, "u1", "removed", "delete", "d1"),
                                     Change(C, "u1", "removed", "delete", "d1")]
    assert delete(s, "u1", "d2") == []


def test_late_changes_of_a_gone_profile_go_to_the_kept_one_or_are_counted_deleted():
    s = Slice("ws", gone={"m": Gone(MERGED, "k"), "d": Gone("d"), "t": Gone(TOMBSTONED)})
    assert imported(s, A, "m", "add") == "k"
    assert imported(s, A, "d", "add") is None and s.counters[A, "u:profile_deleted"] == 1
    assert imported(s, A, "t", "add") == Change(A, "t", "added", "cohort_import", "s")  # memberships stay
    assert accepts_profile_update(s, "t") and not accepts_profile_update(s, "m")


def test_a_deletion_of_a_kept_profile_waits_for_the_cohorts_announced_to_it():
    s = Slice("ws")
    announce_merge(s, "k", "m1")
    announce_merge(s, "k", "m2")
    assert hold(s, "k", "delete k")
    assert hold(s, "k", "later")  # behind what is held, in order
    assert handover_arrived(s, "k", "m1") == []
    assert handover_arrived(s, "k", "m2") == ["delete k", "later"]
    assert not s.waits["k"] and s.waits_now == {"k"}  # empty: written back as gone
    assert not hold(s, "k", "now")


def test_cohorts_that_arrive_before_their_announcement_are_not_waited_for():
    s = Slice("ws")
    assert handover_arrived(s, "k", "m") == []
    assert s.waits["k"] == Wait(early={"m"})
    announce_merge(s, "k", "m")
    assert not s.waits["k"]
    assert not hold(s, "k", "delete k")
