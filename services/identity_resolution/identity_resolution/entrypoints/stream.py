"""identity-resolution's stream, on the shared engine (`cohort_shared.stream.engine`): three
inputs, two handlers.

- cohort.changes (stateless, any task): each change is resolved against its workspace's
  book, read only. A known identifier becomes a membership.resolved row, sent to the
  partition of its user; a bogus one, or the device of an identified user, an unmatched row.
  An unknown identifier, or one with changes still on their way to the book, is forwarded to
  the book's task (identity.forwarded) so that parking and the identity that ends it are
  decided in one place, in order.
- identity.events and identity.forwarded (stateful, the book's task): profile operations
  and forwarded changes, on one loaded book per workspace; the rules are
  `domain.identity_ops` and `domain.matching`; `adapters.book_store` loads and saves.
Delivery: the engine's (exactly once: write-set, tracking and outbox in one Redis commit per
task, outputs and offsets in one Kafka transaction).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from aiokafka.structs import ConsumerRecord
from cohort_shared import schemas as s
from cohort_shared.publishing import partition_for
from cohort_shared.stream.service import InputTopic, StreamService, TaskContext
from cohort_shared.topics import (
    COHORT_CHANGES,
    IDENTITY_EVENTS,
    IDENTITY_FORWARDED,
    IDENTITY_MERGES,
    IDENTITY_PROFILES,
    MEMBERSHIP_RESOLVED,
    MEMBERSHIP_UNMATCHED,
)
from prometheus_client import Counter, Gauge

from ..adapters.book_store import BookStore
from ..domain.book import Book, park_key
from ..domain.effects import Applied, Clock
from ..domain.identity_ops import apply_identity_request, named_identifiers, named_user_ids
from ..domain.matching import PARKABLE, match, resolve_cohort_changes
from ..settings import SERVICE, IdentitySettings

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RESOLVED = Counter("identity_resolved_total", "Cohort changes matched to a profile when they arrived")
UNMATCHED = Counter("identity_unmatched_total", "Cohort changes no profile matched", ["reason"])
FORWARDED = Counter("identity_forwarded_total", "Cohort changes forwarded to their workspace's book")
PARKED = Counter("identity_parked_total", "Unmatched cohort changes parked until their identity appears")
DRAINED = Counter("identity_drained_total", "Parked cohort changes applied once their identity appeared")
SKIPPED = Counter("identity_entries_skipped_total", "Profile identity entries skipped", ["reason"])
PARKED_NOW = Gauge("identity_parked_changes", "Changes parked, waiting for their identity", ["workspace"])

IdentityRequest = (s.TrackRequested, s.AliasRequested, s.IdentifyRequested, s.MergeRequested, s.DeleteRequested)


def ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class Rows:
    """Rows of the batched outputs, grouped the way they are published."""

    def __init__(self) -> None:
        self.resolved: dict[tuple[str, int], list] = defaultdict(list)
        self.unmatched: dict[tuple[str, str, str], tuple[datetime, list]] = {}

    def resolve(self, ws: str, partitions: int, row: tuple) -> None:
        self.resolved[ws, partition_for(row[2].encode(), partitions)].append(row)

    def unmatch(self, ws: str, partner: str, cohort_id: str, accepted_at: datetime, row: tuple) -> None:
        self.unmatched.setdefault((ws, partner, cohort_id), (accepted_at, []))[1].append(row)

    def emit(self, ctx: TaskContext) -> None:
        for (ws, partition), rows in self.resolved.items():
            # Built from validated parts (the request's fields, the book's IDs) and not
            # validated again here: segment-store validates every row it reads, and doing it
            # on both sides was 8% of this service's CPU.
            batch = s.MembershipResolvedBatch.model_construct(workspace_id=ws, resolved_at=ctx.now, rows=rows)
            ctx.emit(MEMBERSHIP_RESOLVED, batch.to_bytes(), batch.kafka_key(), partition)
        for (ws, partner, cohort_id), (accepted_at, rows) in self.unmatched.items():
            batch = s.MembershipUnmatchedBatch(workspace_id=ws, partner=partner, cohort_id=cohort_id,
                                               accepted_at=accepted_at, rows=rows)
            ctx.emit(MEMBERSHIP_UNMATCHED, batch.to_bytes(), batch.kafka_key())


def unmatched_row(change: s.CohortChange | s.MembershipUnmatched, reason: str, source_id: str,
                  parked_until: datetime | None) -> tuple:
    if isinstance(change, s.MembershipUnmatched):
        identifier, direction = change.identifier, change.change
    else:  # a row names its identifier itself
        identifier, direction = change, "remove" if change.should_remove else "add"
    return (identifier.kind, identifier.value, identifier.label, direction, reason, source_id,
            None if parked_until is None else ms(parked_until))


def identity_service(settings: IdentitySettings, store: BookStore) -> StreamService:
    """The stream side of identity-resolution (see the module docstring)."""

    async def on_cohort_changes(ctx: TaskContext, requests: list[s.CohortChangesAccepted]) -> None:
        rows = Rows()
        by_workspace: dict[str, list[s.CohortChangesAccepted]] = defaultdict(list)
        for request in requests:
            by_workspace[request.workspace_id].append(request)
        for ws, batch in by_workspace.items():
            identifiers = [c for r in batch for c in r.changes]  # each row names its identifier
            book = await store.for_matching(ws, identifiers)
            in_flight = await store.in_flight(ws, identifiers)
            forwarding: Tally = Tally()
            for request in batch:
                forwarded = _resolve_known(ctx, book, request, in_flight, rows)
                if forwarded:
                    for row in forwarded:
                        forwarding[park_key(s.Identifier(kind=row[1], value=row[2], label=row[3]))] += 1
                    message = s.CohortChangesForwarded(
                        workspace_id=ws, partner=request.partner, cohort_id=request.cohort_id,
                        request_id=request.request_id, accepted_at=request.accepted_at, rows=forwarded)
                    ctx.emit(IDENTITY_FORWARDED, message.to_bytes(), message.kafka_key())
                    ctx.count(FORWARDED, len(forwarded))
            if forwarding:
                await store.forwarding(ws, dict(forwarding))
        rows.emit(ctx)

    def _resolve_known(ctx: TaskContext, book: Book, request: s.CohortChangesAccepted, in_flight: set[str],
                       rows: Rows) -> list[tuple]:
        """Resolve what the book already decides; return the rows to forward to it."""
        ws, partitions = request.workspace_id, ctx.partitions[MEMBERSHIP_RESOLVED]
        accepted_ms = ms(request.accepted_at)
        forwarded = []
        resolved = 0
        for index, change in enumerate(request.changes):  # each row names its identifier
            source_id = f"{request.request_id}:{index}"
            found = match(book, change)
            if found.reason in PARKABLE or (found.profile is not None and in_flight and park_key(change) in in_flight):
                forwarded.append((index, change.kind, change.value, change.label, change.should_remove))
                in_flight.add(park_key(change))  # a later change of this identifier follows it to the book
            elif found.profile is None:
                ctx.count(UNMATCHED.labels(found.reason))
                rows.unmatch(ws, request.partner, request.cohort_id, request.accepted_at,
                             unmatched_row(change, found.reason, source_id, None))
            else:
                resolved += 1
                rows.resolve(ws, partitions, (request.partner, request.cohort_id, found.profile.user_id,
                                              found.profile.external_id, "remove" if change.should_remove else "add",
                                              source_id, accepted_ms, False))
        ctx.count(RESOLVED, resolved)
        return forwarded

    async def on_book(ctx: TaskContext, messages: list) -> None:
        """Profile operations and forwarded changes, each workspace on one loaded book."""
        clock = Clock(ctx.now, settings.park_window_seconds, settings.max_parked_per_workspace)
        rows = Rows()
        by_workspace: dict[str, list] = defaultdict(list)
        for message in messages:
            by_workspace[message.workspace_id].append(message)
        for ws, batch in by_workspace.items():
            book = await store.load(ws, [i for m in batch for i in _named(m)], with_parking=True,
                                    user_ids=[u for m in batch if isinstance(m, IdentityRequest) for u in named_user_ids(m)])
            done: Tally = Tally()
            for message in batch:
                if isinstance(message, s.CohortChangesForwarded):
                    applied = _apply_forwarded(book, message, clock)
                    for _, kind, value, label, _ in message.rows:
                        done[park_key(s.Identifier(kind=kind, value=value, label=label))] += 1
                else:
                    applied = apply_identity_request(book, message, clock)
                    _report(ctx, store, message, applied)
                _publish(ctx, ws, applied, rows)
            store.save(book, ctx.writes, settings.park_window_seconds)
            if done:
                store.forwarded_done(ws, dict(done), ctx.after_commit)
            if book.parked_counts or book.loaded.get("counts"):
                PARKED_NOW.labels(ws).set(book.live_parked(clock.now_bucket))
        rows.emit(ctx)

    def _publish(ctx: TaskContext, ws: str, applied: Applied, rows: Rows) -> None:
        partitions = ctx.partitions[MEMBERSHIP_RESOLVED]
        for emitted in applied.emitted:
            message = emitted.message
            if isinstance(message, s.MembershipResolved):
                rows.resolve(ws, partitions, (message.partner, message.cohort_id, message.user_id,
                                              message.external_id, message.change, message.source_id,
                                              ms(message.accepted_at), message.was_parked))
            elif isinstance(message, s.MembershipUnmatched):
                rows.unmatch(ws, message.partner, message.cohort_id, message.accepted_at,
                             unmatched_row(message, message.reason, message.source_id, message.parked_until))
            else:
                topic = IDENTITY_PROFILES if emitted.topic == IDENTITY_PROFILES else IDENTITY_MERGES
                ctx.emit(topic, None if message is None else message.to_bytes(), emitted.key.encode())
        tally = applied.tally
        ctx.count(RESOLVED, tally.resolved)
        ctx.count(DRAINED, tally.drained)
        ctx.count(PARKED, tally.parked)
        for reason, n in tally.unmatched.items():
            ctx.count(UNMATCHED.labels(reason), n)
        for reason, n in tally.skipped.items():
            ctx.count(SKIPPED.labels(reason), n)

    def decode(base_topic: str, record: ConsumerRecord) -> s.Message:
        return s.decode(base_topic, record.value)

    return StreamService(
        name=SERVICE,
        inputs=[InputTopic(IDENTITY_EVENTS), InputTopic(IDENTITY_FORWARDED), InputTopic(COHORT_CHANGES, stateful=False)],
        handlers=[((s.CohortChangesAccepted,), on_cohort_changes),
                  ((*IdentityRequest, s.CohortChangesForwarded), on_book)],
        decode=decode,
        outputs=[MEMBERSHIP_RESOLVED],
    )


def _named(message) -> list[s.Identifier]:
    """Every identifier an identity request or forwarded batch names."""
    if isinstance(message, s.CohortChangesForwarded):
        return [s.Identifier(kind=k, value=v, label=label) for _, k, v, label, _ in message.rows]
    return named_identifiers(message)


def _apply_forwarded(book: Book, message: s.CohortChangesForwarded, clock: Clock) -> Applied:
    accepted = s.CohortChangesAccepted(workspace_id=message.workspace_id, partner=message.partner,
                                       cohort_id=message.cohort_id, request_id=message.request_id,
                                       accepted_at=message.accepted_at, changes=[])
    indexed = [(index, s.CohortChange(kind, value, label, remove)) for index, kind, value, label, remove in message.rows]
    return resolve_cohort_changes(book, accepted, clock, indexed)


def _report(ctx: TaskContext, store: BookStore, request, applied: Applied) -> None:
    """What the operator who sent `request` can read back (GET …/identity-requests/<id>)."""
    skipped = dict(applied.tally.skipped)
    report = {"request_id": request.request_id, "type": request.type, "entries": _entries(request),
              "skipped": sum(skipped.values()), "skipped_by_reason": skipped,
              "skipped_entries": [{"index": i, "reason": r} for i, r in applied.tally.skipped_entries],
              "applied_at": ctx.now.isoformat()}
    store.save_report(request.workspace_id, ctx.writes, report, skipped)


def _entries(request) -> int:
    return sum(len(v) for k, v in request.model_dump().items() if isinstance(v, list))
