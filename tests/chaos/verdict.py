"""From what was sent and what the oracle says to what the system must show: expected member
sets, change events and sync-report ranges, keyed by internal user ID."""

from __future__ import annotations

from dataclasses import dataclass

from .checks import ReportExpectation
from .oracle import Oracle
from .producer import Sent
from .retrying import Outcome
from .workload import ImportRequest, Workload


@dataclass
class Expected:
    members: dict[str, set[str]]  # cohort_id -> user IDs
    events: dict[tuple[str, str], list[tuple[str, str]]]  # (user ID, cohort_id) -> [(change, cause)]
    reports: dict[str, ReportExpectation]


def apply_accepted(oracle: Oracle, workload: Workload, sent: Sent) -> None:
    """The oracle takes every acknowledged import request in plan order (each pair's order) and
    the acknowledged merges and deletes in the order they were sent. The two commute: the import
    never names a volatile profile."""
    for request in workload.imports:
        if sent.accepted(request.index):
            oracle.apply_import(request)
    for op, outcome in sent.profile_ops:
        if outcome.attempts[-1:] == ["accepted"]:
            oracle.apply_profile_op(op)


def expected(oracle: Oracle, workload: Workload, sent: Sent, user_ids: dict[str, str]) -> Expected:
    members = {cohort_id: {user_ids[label] for label in oracle.members[cohort_id]} for _, cohort_id in workload.cohorts}
    events = {(user_ids[label], cohort): changes for (label, cohort), changes in oracle.events.items() if changes}
    reports = {}
    requests: list[tuple[ImportRequest, Outcome]] = [
        (r, sent.imports[r.index]) for r in workload.volatile_prelude + workload.imports if r.index in sent.imports]
    for _, cohort_id in workload.cohorts:
        report = oracle.reports[cohort_id]
        extra_received = extra_already = 0
        extra_unmatched: dict[str, int] = {}
        for request, outcome in requests:
            if request.cohort[1] != cohort_id or not outcome.ambiguous_failures:
                continue
            # Each attempt that failed without a clear refusal may have landed too: its
            # identifiers count again as received, its matched ones as already in state
            # (a pair is never touched by another request in between), its unmatched again.
            matched, unmatched = oracle.request_shape(request)
            extra_received += len(request.changes) * outcome.ambiguous_failures
            extra_already += matched * outcome.ambiguous_failures
            for reason, n in unmatched.items():
                extra_unmatched[reason] = extra_unmatched.get(reason, 0) + n * outcome.ambiguous_failures
        reasons = set(report.unmatched) | set(extra_unmatched)
        reports[cohort_id] = ReportExpectation(
            applied=report.applied,
            received=(report.received, report.received + extra_received),
            already_in_state=(report.already_in_state, report.already_in_state + extra_already),
            unmatched={r: (report.unmatched.get(r, 0), report.unmatched.get(r, 0) + extra_unmatched.get(r, 0))
                       for r in reasons},
        )
    return Expected(members, events, reports)
