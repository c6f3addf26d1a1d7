"""After the import: wait until the output settles, read everything the system shows, and
compare it with the oracle."""

from __future__ import annotations

from collections import Counter

import orjson

from .api import SystemApi
from .checks import ReportExpectation, StageCheck, check_dlq, check_events, check_members, check_report, check_stage
from .faults import FaultInjector
from .fleet import Fleet, unready_details
from .infra import INPUT_TOPICS
from .observe import lag, offsets, read_all, read_events, wait_until_settled
from .oracle import Oracle
from .producer import Sent
from .profiles import Profile
from .table import Findings
from .verdict import apply_accepted, expected
from .webhooks import WebhookWatch
from .workload import Workload

GROUPS = {"identity-resolution": ("cohort.changes", "identity.events", "identity.forwarded"),
          "segment-store": ("membership.resolved", "membership.unmatched", "identity.merges", "identity.profiles",
                            "cohort.meta", "segment.handovers")}


async def check_everything(api: SystemApi, fleet: Fleet, env: dict[str, str], workload: Workload, oracle: Oracle,
                           sent: Sent, user_ids: dict[str, str], injector: FaultInjector,
                           profile: Profile, watch: WebhookWatch) -> Findings:
    apply_accepted(oracle, workload, sent)
    api.read_budget = 60  # a service that stays broken is reported, not waited for
    want = expected(oracle, workload, sent, user_ids)
    bootstrap, prefix = env["KAFKA_BOOTSTRAP_SERVERS"], env["TOPIC_PREFIX"]
    dlqs = [f"{prefix}{t}.dlq" for t in INPUT_TOPICS]
    topics = [prefix + t for t in (*INPUT_TOPICS, "membership.changes")] + dlqs
    groups = {prefix + group: [prefix + t for t in inputs] for group, inputs in GROUPS.items()}
    # Longer than a session timeout, so a rebalance in progress is not mistaken for rest.
    window = profile.segment_session_timeout_ms / 1000 + 8
    settled = await wait_until_settled(api, fleet, bootstrap, topics, list(groups), window,
                                       timeout=profile.settle_seconds)

    listed = {}
    for _, cohort_id in workload.cohorts:
        listed[cohort_id] = await _or_none(api.members(cohort_id)) or []
    members = {c: check_members(want.members[c], listed[c]) for c in listed}
    reports = {}
    for _, cohort_id in workload.cohorts:
        cohort = await _or_none(api.cohort(cohort_id))
        reports[cohort_id] = check_report(want.reports[cohort_id], (cohort or {}).get("sync_report"))
    usage = await _or_none(api.usage())
    stage = await _identity_resolution_outputs(bootstrap, prefix, api.ws, want.reports)
    events = await read_events(bootstrap, prefix + "membership.changes", api.ws)
    found_dlq, foreign_reasons = {}, Counter()
    for base in INPUT_TOPICS:
        records = await read_all(bootstrap, f"{prefix}{base}.dlq")
        found_dlq[prefix + base] = [(value, headers.get("dlq.service", b"").decode(errors="replace"))
                                    for _, value, headers in records]
        foreign_reasons.update((base, headers.get("dlq.reason", b"").decode(errors="replace")[:200])
                               for _, value, headers in records if value != injector.poison.get(prefix + base))
    dlq_notes = [f"{base}.dlq holds {n} record(s) that are not poison, reason: {reason}"
                 for (base, reason), n in sorted(foreign_reasons.items())]
    acknowledged = sum(len(r.changes) for r in workload.volatile_prelude + workload.imports if sent.accepted(r.index))
    checked_events = check_events(want.events, events, {c: set(v) for c, v in listed.items()})
    deliveries, webhook = await watch.check(events, timeout=profile.settle_seconds)
    lost_notes = [f"lost: {user} {cohort} {change} ({cause})" for user, cohort, change, cause in
                  checked_events.lost_examples]
    return Findings(
        injected=injector.injected, not_injected=injector.not_injected, sent=sent,
        acknowledged_identifiers=acknowledged, members=members,
        events=checked_events,
        reports=reports,
        usage=((usage or {}).get("data_points"), sum(r.applied for r in want.reports.values())),
        dlq=check_dlq(injector.poison, found_dlq),
        settled=settled,
        lag=lag(await offsets(bootstrap, topics, list(groups)), groups),
        stage=stage,
        deliveries=deliveries,
        webhook=webhook or {},
        refused_signatures=watch.receiver.refused_signatures,
        notes=dlq_notes + lost_notes + unready_details(fleet, settled.readiness)
        + [f"identity-resolution published {n:,} outputs for {cohort}, expected {low:,} to {high:,}"
           for cohort, (n, (low, high)) in sorted(stage.outside_range.items())],
    )


async def _identity_resolution_outputs(bootstrap: str, prefix: str, workspace: str,
                                       reports: dict[str, ReportExpectation]) -> StageCheck:
    """Where a loss happened: identity-resolution must publish one resolved or unmatched row
    per identifier of each landed request (each with its own source_id; rows travel in
    batches), so its outputs per cohort must fall in the range the sync reports allow (applied
    + already in state + unmatched). Outside it, the loss is there; inside it, after it
    (segment-store)."""
    expected = {cohort: (r.applied + r.already_in_state[0] + sum(lo for lo, _ in r.unmatched.values()),
                         r.applied + r.already_in_state[1] + sum(hi for _, hi in r.unmatched.values()))
                for cohort, r in reports.items()}
    source_ids: dict[str, list[str]] = {cohort: [] for cohort in reports}
    for topic in ("membership.resolved", "membership.unmatched"):
        for _, value, _ in await read_all(bootstrap, prefix + topic):
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue  # the poison record
            if record.get("workspace_id") != workspace:
                continue
            if topic == "membership.resolved":  # rows: partner, cohort_id, user, external_id, change, source_id, …
                for row in record.get("rows", []):
                    if row[1] in source_ids:
                        source_ids[row[1]].append(row[5])
            elif record.get("cohort_id") in source_ids:  # rows: kind, value, label, change, reason, source_id, …
                source_ids[record["cohort_id"]] += [row[5] for row in record.get("rows", [])]
    return check_stage(expected, source_ids)


async def _or_none(call):
    """A read API that does not answer (a broken service) is a finding, not a crash of the suite."""
    try:
        return await call
    except Exception as error:  # noqa: BLE001
        print(f"  [check] read failed: {error!r}"[:300], flush=True)
        return None
