"""The oracle against docs/matching.md, docs/segments.md, docs/events.md on small hand-made cases."""

from __future__ import annotations

import random

from tests.chaos.identifiers import alias, device, external
from tests.chaos.oracle import Oracle
from tests.chaos.profiles import CI
from tests.chaos.workload import Change, ImportRequest, ProfileOp, build_workload


def oracle_with(*ops: ProfileOp) -> Oracle:
    oracle = Oracle()
    for op in ops:
        oracle.apply_profile_op(op)
    return oracle


def send(oracle: Oracle, cohort: str, *changes: tuple) -> None:
    oracle.apply_import(ImportRequest(0, ("mixpanel", cohort), tuple(Change(i, r) for i, r in changes)))


def test_matching_rules():
    oracle = oracle_with(ProfileOp("track_external", external("u1")), ProfileOp("track_device", device("d1")),
                         ProfileOp("track_device", device("d2")), ProfileOp("alias_only", alias("a@x")),
                         ProfileOp("identify_device", external("u2"), device("d2")))
    assert oracle.match(external("u1")) == ("external_id:u1", None)
    assert oracle.match(device("d1")) == ("device_id:d1", None)
    assert oracle.match(alias("a@x")) == ("alias:email:a@x", None)
    assert oracle.match(device("d2")) == (None, "device_id_of_identified_user")
    assert oracle.match(external("u2")) == ("device_id:d2", None)
    assert oracle.match(external("ghost")) == (None, "unknown_external_id")
    assert oracle.match(alias("ghost")) == (None, "unknown_alias")


def test_import_counts_effective_changes_and_events():
    oracle = oracle_with(ProfileOp("track_external", external("u1")))
    send(oracle, "c", (external("u1"), False), (external("nobody"), False))
    send(oracle, "c", (external("u1"), False))  # already a member
    send(oracle, "c", (external("u1"), True))
    send(oracle, "c", (external("u1"), True))  # already not a member
    report = oracle.reports["c"]
    assert (report.received, report.applied, report.already_in_state) == (5, 2, 2)
    assert report.unmatched == {"unknown_external_id": 1}
    assert oracle.events[("external_id:u1", "c")] == [("added", "cohort_import"), ("removed", "cohort_import")]
    assert oracle.members["c"] == set()


def test_merge_then_delete_of_the_kept_profile():
    oracle = oracle_with(*(ProfileOp("track_external", external(u)) for u in ("m", "k")))
    send(oracle, "c1", (external("m"), False), (external("k"), False))
    send(oracle, "c2", (external("m"), False))
    oracle.apply_profile_op(ProfileOp("merge", external("m"), external("k")))
    oracle.apply_profile_op(ProfileOp("merge", external("m"), external("k")))  # a retry finds nothing
    assert oracle.events[("external_id:k", "c2")] == [("added", "merge")]
    assert oracle.events[("external_id:m", "c1")] == [("added", "cohort_import"), ("removed", "merge")]
    assert oracle.events[("external_id:m", "c2")] == [("added", "cohort_import"), ("removed", "merge")]
    assert oracle.members == {"c1": {"external_id:k"}, "c2": {"external_id:k"}}
    assert oracle.match(external("m")) == (None, "unknown_external_id")  # the merged external ID is gone
    oracle.apply_profile_op(ProfileOp("delete", external("k")))
    assert oracle.events[("external_id:k", "c1")] == [("added", "cohort_import"), ("removed", "delete")]
    assert oracle.members == {"c1": set(), "c2": set()}
    assert oracle.reports["c1"].applied == 2  # merges and deletes are not cohort-import changes


def test_merge_moves_devices_to_the_kept_profile():
    oracle = oracle_with(ProfileOp("track_device", device("d1")), ProfileOp("track_device", device("d2")))
    oracle.apply_profile_op(ProfileOp("merge", device("d1"), device("d2")))
    assert oracle.match(device("d1")) == ("device_id:d2", None)


def test_the_ci_workload_keeps_its_promises():
    workload = build_workload(CI, random.Random(7))
    assert sum(len(r.changes) for r in workload.imports) >= CI.changes
    assert all(1 <= len(r.changes) <= 1000 for r in workload.imports + workload.volatile_prelude)
    named = {c.ident for r in workload.imports for c in r.changes}
    assert not named & set(workload.volatile), "the import never names a volatile profile"
    assert all(len({c.ident for c in r.changes}) == len(r.changes) for r in workload.imports)
    assert {op.action for op in workload.volatile_ops} == {"merge", "delete"}
    oracle = Oracle()
    for op in workload.profile_ops:
        oracle.apply_profile_op(op)
    reasons = set()
    for request in workload.imports:
        reasons |= set(oracle.request_shape(request)[1])
    assert "device_id_of_identified_user" in reasons and "unknown_external_id" in reasons
