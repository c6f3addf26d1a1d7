"""The comparisons of the suite, as pure functions over plain values, so a unit test can feed
each one a crafted bad input and see it count."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

Range = tuple[int, int]


@dataclass
class MembersCheck:
    expected: int = 0
    actual: int = 0
    missing: int = 0
    unexpected: int = 0
    listed_twice: int = 0


def check_members(expected: set[str], listed: list[str]) -> MembersCheck:
    """One cohort's members as listed (every page, in order) against the oracle's."""
    actual = set(listed)
    return MembersCheck(len(expected), len(actual), len(expected - actual), len(actual - expected),
                        len(listed) - len(actual))


@dataclass
class EventsCheck:
    expected: int = 0
    seen: int = 0  # distinct event_ids
    lost: int = 0
    unexpected: int = 0
    duplicate_event_ids: int = 0
    order_violations: int = 0  # (user, cohort) pairs whose events came in another order than the changes
    not_replaying: int = 0  # (user, cohort) pairs whose events do not alternate up to the final membership
    by_cause: dict[str, tuple[int, int]] = field(default_factory=dict)  # cause -> (expected, seen)
    lost_examples: list[tuple] = field(default_factory=list)  # (user, cohort, change, cause), a few


def check_events(expected: dict[tuple[str, str], list[tuple[str, str]]], events: list[dict],
                 final_members: dict[str, set[str]]) -> EventsCheck:
    """`events` as read from `membership.changes` (each partition in offset order; one user's
    events share a partition). `expected`: per (user_id, cohort_id), (change, cause) in order."""
    result = EventsCheck()
    ids: set[str] = set()
    per_pair: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    seen_counts: Counter = Counter()
    for event in events:
        if event["event_id"] in ids:
            result.duplicate_event_ids += 1
            continue
        ids.add(event["event_id"])
        key = (event["user_id"], event["cohort_id"])
        per_pair[key].append((event["change"], event["cause"]))
        seen_counts[(*key, event["change"], event["cause"])] += 1
    expected_counts: Counter = Counter()
    for (user, cohort), changes in expected.items():
        for change, cause in changes:
            expected_counts[(user, cohort, change, cause)] += 1
    result.expected, result.seen = sum(expected_counts.values()), len(ids)
    missing = expected_counts - seen_counts
    result.lost = sum(missing.values())
    result.lost_examples = sorted(missing)[:10]
    result.unexpected = sum((seen_counts - expected_counts).values())
    for (user, cohort), seen in per_pair.items():
        if not in_order(seen, expected.get((user, cohort), [])):
            result.order_violations += 1
        if not alternates_to([change for change, _ in seen], user in final_members.get(cohort, set())):
            result.not_replaying += 1
    causes = {k[3] for k in expected_counts} | {k[3] for k in seen_counts}
    result.by_cause = {
        cause: (sum(n for k, n in expected_counts.items() if k[3] == cause),
                sum(n for k, n in seen_counts.items() if k[3] == cause))
        for cause in sorted(causes)
    }
    return result


def in_order(seen: list[tuple[str, str]], expected: list[tuple[str, str]]) -> bool:
    """Whether the seen events that were expected at all came in the expected order (a lost one
    is a loss, an extra one is unexpected; neither is an order violation)."""
    spare = Counter(expected)
    wanted = iter(expected)
    for event in seen:
        if spare[event] == 0:
            continue  # not expected (or more often than expected): counted as unexpected
        spare[event] -= 1
        if event not in wanted:  # advances through `expected` until it finds `event`
            return False
    return True


def alternates_to(changes: list[str], member_at_end: bool) -> bool:
    """added, removed, added, … from a non-member, ending in the final membership."""
    for position, change in enumerate(changes):
        if change != ("added" if position % 2 == 0 else "removed"):
            return False
    return (len(changes) % 2 == 1) == member_at_end


@dataclass
class ReportExpectation:
    applied: int
    received: Range
    already_in_state: Range
    unmatched: dict[str, Range]


def check_report(expected: ReportExpectation, report: dict | None) -> list[str]:
    """What differs between a cohort's sync report and what was sent; empty when it agrees."""
    if report is None:
        return ["no sync report"]
    problems = []
    if report.get("applied") != expected.applied:
        problems.append(f"applied {report.get('applied')} != {expected.applied}")
    for name, (low, high) in (("received", expected.received), ("already_in_state", expected.already_in_state)):
        if not low <= report.get(name, -1) <= high:
            problems.append(f"{name} {report.get(name)} not in [{low}, {high}]")
    unmatched = report.get("unmatched", {})
    for reason in sorted(set(unmatched) | set(expected.unmatched)):
        low, high = expected.unmatched.get(reason, (0, 0))
        if not low <= unmatched.get(reason, 0) <= high:
            problems.append(f"unmatched {reason} {unmatched.get(reason, 0)} not in [{low}, {high}]")
    return problems


@dataclass
class DlqCheck:
    injected: int = 0
    found: int = 0
    missing: int = 0  # poison records that reached no DLQ
    foreign: int = 0  # dead-lettered records that are not poison: real data set aside
    repeated: int = 0  # poison dead-lettered more than once


def check_dlq(injected: dict[str, bytes], found: dict[str, list[tuple[bytes, str]]]) -> DlqCheck:
    """`injected`: per input topic, the poison bytes sent to it; `found`: per input topic, the
    values on its `.dlq` with the service that dead-lettered each (`dlq.service`). A topic
    read by two services (cohort.meta and identity.profiles: segment-store and ingest's
    export view) is dead-lettered once by each; more than once by one service is a repeat."""
    result = DlqCheck(injected=len(injected), found=sum(len(v) for v in found.values()))
    for topic in set(injected) | set(found):
        poison = injected.get(topic)
        by_service = Counter(service for value, service in found.get(topic, []) if value == poison)
        if poison is None or not by_service:
            result.missing += poison is not None
        else:
            result.repeated += sum(n - 1 for n in by_service.values())
        result.foreign += sum(1 for value, _ in found.get(topic, []) if value != poison)
    return result


@dataclass
class StageCheck:
    """What one stage published, per cohort, against what the oracle says it must have."""

    outside_range: dict[str, tuple[int, Range]] = field(default_factory=dict)  # cohort -> (count, range)
    published_twice: int = 0


def check_stage(expected: dict[str, Range], source_ids: dict[str, list[str]]) -> StageCheck:
    """`source_ids`: per cohort, the source_id of every output record (one per identifier of
    a request landing); a source_id seen twice is an output published twice."""
    result = StageCheck()
    for cohort, (low, high) in expected.items():
        ids = source_ids.get(cohort, [])
        result.published_twice += len(ids) - len(set(ids))
        if not low <= len(set(ids)) <= high:
            result.outside_range[cohort] = (len(set(ids)), (low, high))
    return result


@dataclass
class DeliveryCheck:
    events: int = 0  # distinct events of the workspace on membership.changes
    delivered: int = 0  # distinct webhook-ids the receiver accepted
    missing: int = 0  # events on the topic the receiver never got
    unexpected: int = 0  # webhook-ids that are no event of the topic
    mismatched_ids: int = 0  # deliveries whose webhook-id is not their body's event_id
    duplicates: int = 0  # deliveries beyond the first of an event (allowed: at least once)
    order_violations: int = 0  # users whose events first arrived in another order than the topic's


def check_deliveries(events: list[dict], received: list[tuple[str, dict]]) -> DeliveryCheck:
    """`events` as read from `membership.changes` (per partition in offset order, so per user
    in order); `received`: (webhook-id, body's data) in arrival order at the receiver."""
    result = DeliveryCheck(events=len({e["event_id"] for e in events}))
    topic_ids = {e["event_id"] for e in events}
    first_seen: dict[str, list[str]] = defaultdict(list)
    arrived: set[str] = set()
    for webhook_id, data in received:
        if webhook_id != data.get("event_id"):
            result.mismatched_ids += 1
        if webhook_id in arrived:
            result.duplicates += 1
            continue
        arrived.add(webhook_id)
        if webhook_id not in topic_ids:
            result.unexpected += 1
            continue
        first_seen[data["user_id"]].append(webhook_id)
    result.delivered = len(arrived & topic_ids)
    result.missing = len(topic_ids - arrived)
    per_user: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event["event_id"] not in per_user[event["user_id"]]:
            per_user[event["user_id"]].append(event["event_id"])
    for user, order in first_seen.items():
        topic_order = [event_id for event_id in per_user[user] if event_id in set(order)]
        result.order_violations += order != topic_order
    return result
