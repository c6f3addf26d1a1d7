"""Membership diffing: which changes are effective, what a merge and a deletion emit, and how
late input for a gone profile is treated."""

from segment_store.domain.membership import Change, Memberships, merge_gains

A, B, C = ("mixpanel", "a"), ("mixpanel", "b"), ("amplitude", "c")


def test_an_add_of_a_member_or_a_remove_of_a_non_member_is_a_no_op():
    m = Memberships()
    assert m.apply_change(A, "u1", "add") == ("applied", [Change(A, "u1", "added", "cohort_import")])
    assert m.apply_change(A, "u1", "add") == ("already_in_state", [])
    assert m.apply_change(A, "u2", "remove") == ("already_in_state", [])
    assert m.apply_change(A, "u1", "remove") == ("applied", [Change(A, "u1", "removed", "cohort_import")])
    assert m.members[A] == set()


def test_a_merge_adds_the_kept_profile_where_new_then_removes_the_merged_one():
    m = Memberships()
    for cohort, user in ((A, "merged"), (B, "merged"), (B, "kept"), (C, "kept")):
        m.apply_change(cohort, user, "add")
    assert m.merge("merged", "kept") == [
        Change(A, "kept", "added", "merge"),
        Change(A, "merged", "removed", "merge"),
        Change(B, "merged", "removed", "merge"),
    ]
    assert m.cohorts_of["kept"] == {A, B, C} and not m.cohorts_of["merged"]


def test_merge_gains_are_the_merged_cohorts_the_kept_profile_lacks():
    assert merge_gains({B}, [A, B, C]) == [A, C]
    assert merge_gains(set(), []) == []


def test_a_deletion_removes_every_membership_once():
    m = Memberships()
    m.apply_change(A, "u1", "add")
    m.apply_change(C, "u1", "add")
    assert m.delete("u1") == [Change(C, "u1", "removed", "delete"), Change(A, "u1", "removed", "delete")]
    assert m.delete("u1") == []


def test_late_changes_for_a_merged_profile_land_on_the_kept_one():
    m = Memberships()
    m.merge("old", "new")
    assert m.apply_change(A, "old", "add") == ("applied", [Change(A, "new", "added", "cohort_import")])
    m.merge("new", "newest")
    assert m.current("old") == "newest"
    assert m.apply_change(A, "old", "remove") == ("applied", [Change(A, "newest", "removed", "cohort_import")])


def test_late_input_for_a_deleted_profile_changes_nothing():
    m = Memberships()
    m.apply_change(A, "u1", "add")
    m.delete("u1")
    assert m.apply_change(A, "u1", "add") == ("profile_deleted", [])
    assert m.merge("u1", "u2") == []
    assert m.delete("u1") == []


def test_a_merge_into_a_deleted_profile_only_removes_the_merged_one():
    m = Memberships()
    m.apply_change(A, "merged", "add")
    m.delete("kept")
    assert m.merge("merged", "kept") == [Change(A, "merged", "removed", "merge")]
    assert m.current("merged") is None


def test_merging_a_profile_into_itself_does_nothing():
    m = Memberships()
    m.apply_change(A, "u1", "add")
    assert m.merge("u1", "u1") == []
    assert m.members[A] == {"u1"}
