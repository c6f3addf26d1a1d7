"""The rows of the suite's table, from the results of each phase."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .checks import DeliveryCheck, DlqCheck, EventsCheck, MembersCheck, StageCheck
from .faults import LABELS
from .fleet import Fleet
from .fuzz import FuzzResult
from .observe import Settled
from .producer import Sent
from .report import Row


@dataclass
class Findings:
    injected: Counter
    not_injected: Counter
    sent: Sent
    acknowledged_identifiers: int
    members: dict[str, MembersCheck]
    events: EventsCheck
    reports: dict[str, list[str]]  # cohort_id -> problems
    usage: tuple[int | None, int]  # (data_points shown, sum of applied expected)
    dlq: DlqCheck
    stage: StageCheck
    settled: Settled
    lag: dict[str, int]
    deliveries: DeliveryCheck
    webhook: dict  # the webhook as delivery's operator API shows it at the end
    refused_signatures: int
    notes: list[str] = field(default_factory=list)  # details behind failed counts, for the report
    readiness_after_fuzz: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    fuzz: list[FuzzResult] = field(default_factory=list)


def build_rows(f: Findings, fleet: Fleet, faults_on: bool) -> list[Row]:
    rows = [Row("faults", LABELS[kind], f.injected.get(kind, 0)) for kind in LABELS] if faults_on else []
    rows += [Row("faults", f"planned but not injected: {LABELS[k]}", n, True) for k, n in f.not_injected.items()]
    for module in ("ingest", "identity_resolution", "segment_store", "delivery"):
        exits = sum(i.unplanned_exits for i in fleet.of(module))
        rows.append(Row("faults", f"{module}: exited by itself, restarted by the harness", exits))
    outcomes = [*f.sent.imports.values(), *(o for _, o in f.sent.profile_ops)]
    attempts = [a for o in outcomes for a in o.attempts]
    rows += [
        Row("import", "requests (prelude and continuous import)", len(f.sent.imports)),
        Row("import", "identifiers acknowledged (202)", f.acknowledged_identifiers),
        Row("import", "retried attempts (imports, merges, deletes): 5xx / 429 / connection lost",
            f"{attempts.count('server_error')} / {attempts.count('rate_limited')} / {attempts.count('connection')}"),
        Row("import", "merges and deletes acknowledged",
            sum(o.attempts[-1:] == ["accepted"] for _, o in f.sent.profile_ops)),
        Row("import", "requests refused (4xx) although valid", len(f.sent.refused), True),
        Row("import", "answers 5xx other than 503 (a failure of Kafka or Redis must be a 503)",
            sum(1 for o in outcomes for code in o.statuses if code >= 500 and code != 503), True),
        Row("import", "requests never acknowledged before the deadline", len(f.sent.unanswered), True),
    ]
    for cohort_id, check in sorted(f.members.items()):
        rows.append(Row("memberships", f"{cohort_id}: members expected / listed", f"{check.expected:,} / {check.actual:,}"))
    rows += [
        Row("memberships", "missing members (all cohorts)", sum(c.missing for c in f.members.values()), True),
        Row("memberships", "unexpected members (all cohorts)", sum(c.unexpected for c in f.members.values()), True),
        Row("memberships", "members listed twice while paging", sum(c.listed_twice for c in f.members.values()), True),
        Row("membership.changes", "effective changes expected / distinct events seen",
            f"{f.events.expected:,} / {f.events.seen:,}"),
    ]
    rows += [Row("membership.changes", f"cause {cause}: expected / seen", f"{exp:,} / {seen:,}")
             for cause, (exp, seen) in f.events.by_cause.items()]
    rows += [
        Row("membership.changes", "lost effective changes", f.events.lost, True),
        Row("membership.changes", "unexpected events (no such effective change)", f.events.unexpected, True),
        Row("membership.changes", "duplicate event_ids", f.events.duplicate_event_ids, True),
        Row("membership.changes", "per-user order violations (user, cohort)", f.events.order_violations, True),
        Row("membership.changes", "(user, cohort) streams not alternating up to the final membership",
            f.events.not_replaying, True),
        *delivery_rows(f),
        Row("stages", "identity-resolution: cohorts whose resolved + unmatched outputs are off (the loss is there)",
            len(f.stage.outside_range), True),
        Row("stages", "identity-resolution: outputs published twice (same source_id)", f.stage.published_twice, True),
        Row("sync reports", "cohorts whose report disagrees with what was sent",
            sum(bool(p) for p in f.reports.values()), True),
        Row("sync reports", "usage data_points shown / expected",
            f"{f.usage[0]:,} / {f.usage[1]:,}" if isinstance(f.usage[0], int) else f"none / {f.usage[1]:,}"),
        Row("sync reports", "usage mismatch", int(f.usage[0] != f.usage[1]), True),
        Row("DLQ", "poison records injected / dead-lettered", f"{f.dlq.injected} / {f.dlq.found}"),
        Row("DLQ", "poison records missing from their DLQ", f.dlq.missing, True),
        Row("DLQ", "records dead-lettered that are not poison", f.dlq.foreign, True),
        Row("DLQ", "poison dead-lettered more than once", f.dlq.repeated, True),
        Row("services", f"output not settled (still moving) after {f.settled.seconds:.0f} s", int(not f.settled.settled),
            True),
        Row("services", "instances not healthy and ready after the import",
            sum(s != (200, 200) for s in f.settled.readiness.values()), True),
    ]
    rows += [Row("services", f"{group}: records not committed past (markers included)", n) for group, n in f.lag.items()]
    for result in f.fuzz:
        rows += [
            Row("fuzzing", f"{result.service}: requests", result.requests),
            Row("fuzzing", f"{result.service}: 5xx answers", result.server_errors, True),
            Row("fuzzing", f"{result.service}: refusals that are not a 4xx JSON message", result.refusals_without_message,
                True),
        ]
        if result.error:
            rows.append(Row("fuzzing", f"{result.service}: schemathesis did not complete", 1, True))
        rows += [Row("fuzzing (conformance, reported apart)", f"{result.service}: {name}", n)
                 for name, n in sorted(result.conformance.items())]
    if f.readiness_after_fuzz:
        rows.append(Row("services", "instances not healthy and ready after fuzzing",
                        sum(s != (200, 200) for s in f.readiness_after_fuzz.values()), True))
    return rows


def delivery_rows(f: Findings) -> list[Row]:
    d, hook = f.deliveries, f.webhook
    return [
        Row("webhooks", "events on membership.changes / delivered (distinct webhook-ids, signatures verified)",
            f"{d.events:,} / {d.delivered:,}"),
        Row("webhooks", "events missing at the receiver", d.missing, True),
        Row("webhooks", "deliveries that are no event of membership.changes", d.unexpected, True),
        Row("webhooks", "deliveries whose webhook-id is not their event_id", d.mismatched_ids, True),
        Row("webhooks", "per-user order violations at the receiver (first arrivals)", d.order_violations, True),
        Row("webhooks", "signatures the receiver refused", f.refused_signatures, True),
        Row("webhooks", "events given up on (failed) / still pending at the end",
            f"{hook.get('failed', '?')} / {hook.get('pending', '?')}"),
        Row("webhooks", "events failed or pending at the end", (hook.get("failed") or 0) + (hook.get("pending") or 0)
            if hook else 1, True),
        Row("webhooks", "deliveries again with the same webhook-id (at least once: allowed)", d.duplicates),
    ]

