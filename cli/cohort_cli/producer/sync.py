"""One sync of one cohort, as Mixpanel's producer does it: name the cohort, send the diff
against the last successful snapshot in bounded parallel batches, then keep the new snapshot.

Removes go before adds, with a barrier between them: when a person's identifiers change
between two exports (an alias row that became a user_id row), the removed and the added
identifier can resolve to the same profile, and only remove-then-add leaves them a member.
Within a phase each identifier is sent once, so parallel batches cannot reorder it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..http_client import run_bounded
from ..identifiers import Identifier
from .batching import MAX_IDENTIFIERS_PER_REQUEST, Batch, batch_changes
from .diff import CohortDiff, diff_members
from .partner_api import PartnerApi
from .snapshots import Snapshot, SnapshotKey, SnapshotStore


@dataclass(frozen=True)
class CohortSync:
    """What to sync: which cohort, under which name, and how hard to push."""

    cohort_id: str
    name: str
    snapshot_key: SnapshotKey
    created_at: datetime | None = None
    concurrency: int = 4
    batch_limit: int = MAX_IDENTIFIERS_PER_REQUEST


@dataclass
class SyncReport:
    """What one sync did; `requests` counts HTTP calls that succeeded, `retries` the extra attempts."""

    first_sync: bool
    number: int = 1
    adds: int = 0
    removes: int = 0
    accepted: int = 0
    dropped_pre_2010: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    snapshot_path: str | None = field(default=None, repr=False)

    def summary(self) -> str:
        kind = "first sync" if self.first_sync else "diff"
        return (
            f"{kind}: sent {self.adds:,} adds, {self.removes:,} removes; accepted {self.accepted:,}; "
            f"dropped pre-2010 {self.dropped_pre_2010:,}; {self.requests:,} requests, "
            f"{self.retries:,} retries; {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class SyncPlan:
    """What a sync will send, known before anything is sent, and its number in the cohort's
    history: one more than the successful syncs the last snapshot counts."""

    number: int
    previous: Snapshot | None
    diff: CohortDiff


def plan_sync(store: SnapshotStore, job: CohortSync, members: Mapping[Identifier, datetime | None]) -> SyncPlan:
    """Read the last snapshot once: the diff against it and the number of the sync to come."""
    previous = store.load(job.snapshot_key)
    diff = diff_members(previous.members if previous else None, members)
    return SyncPlan((previous.syncs if previous else 0) + 1, previous, diff)


async def sync_cohort(
    api: PartnerApi,
    store: SnapshotStore,
    job: CohortSync,
    members: Mapping[Identifier, datetime | None],
    on_progress: Callable[[int], None] = lambda sent: None,
    on_planned: Callable[[int], None] = lambda total: None,
    plan: SyncPlan | None = None,
) -> SyncReport:
    """Run one sync (planned here unless `plan` is given); raises ApiError (snapshot
    untouched) when any request finally fails."""
    started = time.monotonic()
    plan = plan or plan_sync(store, job, members)
    previous, diff = plan.previous, plan.diff
    report = SyncReport(
        first_sync=previous is None, number=plan.number, adds=len(diff.adds), removes=len(diff.removes)
    )
    on_planned(diff.size)

    # The naming call needs created_at; without one given, the first sync's time stays the cohort's.
    created_at = job.created_at or (previous and previous.created_at) or datetime.now(UTC)
    named = await api.name_cohort(job.cohort_id, job.name, created_at)
    report.requests += 1
    report.retries += named.retries

    async def send(batch: Batch) -> None:
        sent = await api.send_changes(job.cohort_id, batch.entries)
        report.requests += 1
        report.retries += sent.retries
        report.accepted += int(sent.body.get("accepted", 0))
        report.dropped_pre_2010 += int((sent.body.get("dropped") or {}).get("pre_2010", 0))
        on_progress(batch.identifiers)

    for phase in (diff.removes, diff.adds):
        await run_bounded(batch_changes(phase, job.batch_limit), job.concurrency, send)

    report.snapshot_path = str(store.save(job.snapshot_key, members.keys(), created_at, syncs=plan.number))
    report.seconds = time.monotonic() - started
    return report
