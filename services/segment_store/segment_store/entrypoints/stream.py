"""segment-store's stream, on the shared engine (`cohort_shared.stream.engine`): every input is
stateful and every message of a task goes through one handler, so one batch loads each
workspace's slice once (`adapters/task_store.py`), applies the rules (`domain/membership.py`)
in the order read, writes the slice back and publishes `membership.changes`.

Inputs, co-partitioned: membership.resolved (batches of rows, on the partition of their
users), identity.merges and identity.profiles (keyed by user), segment.handovers (ours, keyed
by user), cohort.meta and membership.unmatched (keyed by cohort: their counters are this
task's share of the cohort's report).

Delivery: the engine's. `event_id` is uuid5 of the change's identity (domain/events.py);
`occurred_at` is the batch's apply time, stored with the events in the outbox, so a replay
publishes them byte for byte.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict
from datetime import UTC, datetime

import orjson
from cohort_shared import schemas as s
from cohort_shared.stream.metrics import BulkHistogram
from cohort_shared.stream.service import (
    InputTopic,
    ProfileTombstone,
    StreamService,
    TaskContext,
    decode_with_tombstones,
)
from cohort_shared.topics import (
    COHORT_META,
    IDENTITY_MERGES,
    IDENTITY_PROFILES,
    MEMBERSHIP_CHANGES,
    MEMBERSHIP_RESOLVED,
    MEMBERSHIP_UNMATCHED,
    SEGMENT_HANDOVERS,
)
from prometheus_client import Counter

from ..adapters.layout import alias_field, cohort_code, device_field, external_id_field
from ..adapters.migration import LayoutMigration
from ..adapters.task_store import Loaded, TaskStore
from ..domain import membership as rules
from ..domain.events import event_id
from ..settings import SERVICE, SegmentSettings

CHANGES = Counter("segment_membership_changes_total", "membership.changes events published", ["change", "cause"])
LATENCY = BulkHistogram("cohort_change_latency_seconds", "From ingest accepting a change to its membership.changes event",
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_HOPS = 64
"""Profiles a redirected change or a handover may pass through. identity-resolution merges
only current profiles, so chains end; this bounds what malformed input could do."""


class Batch:
    """One task's messages of one workspace, on one loaded slice."""

    def __init__(self, ctx: TaskContext, loaded: Loaded) -> None:
        self.ctx, self.loaded, self.slice = ctx, loaded, loaded.slice
        self.now = ctx.now.isoformat()
        self.now_s = (ctx.now - _EPOCH).total_seconds()
        self.ws = loaded.ws
        self.redirected: dict[tuple[str, int], list] = defaultdict(list)
        self.published: Tally = Tally()  # (change, cause) -> events, counted once per batch
        self.accepted: Tally = Tally()  # when ingest accepted them (ms) -> events, for LATENCY

    def publish(self, change: rules.Change, external_id: str | None) -> None:
        partner, cohort_id = change.cohort
        body = {
            "event_id": event_id(self.ws, partner, cohort_id, change.user_id, change.change, change.cause,
                                 change.source_id),
            "workspace_id": self.ws, "partner": partner, "cohort_id": cohort_id, "user_id": change.user_id,
            "external_id": external_id, "change": change.change, "cause": change.cause, "occurred_at": self.now,
        }
        self.ctx.emit(MEMBERSHIP_CHANGES, orjson.dumps(body), change.user_id.encode())
        self.published[change.change, change.cause] += 1

    def imported(self, rows: list, redirected: bool, hops: int = 0) -> None:
        for partner, cohort_id, user_id, external_id, direction, source_id, accepted_ms, _ in rows:
            outcome = rules.apply_import(self.slice, rules.ImportedChange((partner, cohort_id), user_id, direction,
                                                                          source_id))
            if isinstance(outcome, str):  # merged away: the profile it went into takes the change
                if hops < MAX_HOPS:
                    self.redirected[outcome, hops + 1].append((partner, cohort_id, outcome, None, direction,
                                                               source_id, accepted_ms, False))
            elif outcome is not None:
                self.loaded.remember(user_id, None if redirected else external_id)
                self.publish(outcome, self.loaded.external_id(user_id))
                self.accepted[accepted_ms] += 1
            elif user_id in self.slice.cohorts_of and self.slice.gone.get(user_id) is None:
                self.loaded.remember(user_id, None if redirected else external_id)

    def announced(self, a: s.ProfileMergeAnnounced) -> None:
        rules.announce_merge(self.slice, a.kept_user_id, a.merged_user_id)

    def merged(self, m: s.ProfilesMerged) -> None:
        if rules.hold(self.slice, m.merged_user_id, m.to_bytes().decode()):
            return
        # Handed over even with no cohorts (or if gone already): the kept profile waits for it.
        cohorts = rules.start_merge(self.slice, m.merged_user_id, m.kept_user_id) or []
        handover = s.MembershipsHandedOver(
            workspace_id=self.ws, merged_user_id=m.merged_user_id,
            merged_external_id=m.merged_external_id or self.loaded.external_id(m.merged_user_id),
            kept_user_id=m.kept_user_id, kept_external_id=m.kept_external_id, cohorts=cohorts,
            source_id=m.source_id)
        self.ctx.emit(SEGMENT_HANDOVERS, handover.to_bytes(), handover.kafka_key())

    def handed_over(self, h: s.MembershipsHandedOver) -> None:
        outcome = rules.receive_handover(self.slice, h.kept_user_id, [tuple(c) for c in h.cohorts], h.source_id)
        if isinstance(outcome, str) and h.hops < MAX_HOPS:  # the kept one was merged too: on to its own
            onward = h.model_copy(update={"kept_user_id": outcome, "kept_external_id": None, "hops": h.hops + 1})
            self.ctx.emit(SEGMENT_HANDOVERS, onward.to_bytes(), onward.kafka_key())
            return
        if isinstance(outcome, str):
            outcome = None  # a chain that does not end: as if into a deleted profile
        if outcome is not None:
            self.loaded.remember(h.kept_user_id, h.kept_external_id)
            for change in outcome:
                self.publish(change, self.loaded.external_id(h.kept_user_id))
        if h.cohorts:
            done = s.HandoverCompleted(workspace_id=self.ws, merged_user_id=h.merged_user_id,
                                       merged_external_id=h.merged_external_id, cohorts=h.cohorts,
                                       source_id=h.source_id)
            self.ctx.emit(SEGMENT_HANDOVERS, done.to_bytes(), done.kafka_key())
        if h.hops == 0:  # the handover identity-resolution announced (one passed on was not)
            for raw in rules.handover_arrived(self.slice, h.kept_user_id, h.merged_user_id):
                held = s.decode(IDENTITY_MERGES, raw.encode())
                if isinstance(held, s.ProfilesMerged):
                    self.merged(held)
                else:
                    self.deleted(held)

    def completed(self, d: s.HandoverCompleted) -> None:
        for change in rules.finish_merge(self.slice, d.merged_user_id, [tuple(c) for c in d.cohorts], d.source_id):
            self.publish(change, d.merged_external_id)

    def deleted(self, d: s.ProfileDeleted) -> None:
        if rules.hold(self.slice, d.user_id, d.to_bytes().decode()):
            return
        external_id = d.external_id or self.loaded.external_id(d.user_id)
        for change in rules.delete(self.slice, d.user_id, d.source_id):
            self.publish(change, external_id)

    def finish(self) -> None:
        for (change, cause), n in self.published.items():
            self.ctx.count(CHANGES.labels(change, cause), n)
        for accepted_ms, n in self.accepted.items():
            self.ctx.count(LATENCY.at(max(0.0, self.now_s - accepted_ms / 1000)), n)
        for (user_id, hops), rows in self.redirected.items():
            message = s.ChangesRedirected(workspace_id=self.ws, user_id=user_id, rows=rows, hops=hops)
            self.ctx.emit(SEGMENT_HANDOVERS, message.to_bytes(), message.kafka_key())


def segment_service(settings: SegmentSettings, store: TaskStore) -> StreamService:
    """The stream side of segment-store (see the module docstring)."""

    async def on_task(ctx: TaskContext, messages: list) -> None:
        tombstoned = [m.user_id for m in messages if isinstance(m, ProfileTombstone)]
        homes = await store.workspace_of(ctx.partition, tombstoned) if tombstoned else {}
        by_workspace: dict[str, list] = defaultdict(list)
        for message in messages:
            ws = homes.get(message.user_id) if isinstance(message, ProfileTombstone) else message.workspace_id
            if ws is not None:  # a tombstone of a profile never seen: nothing of it to forget
                by_workspace[ws].append(message)
        for ws, batch in by_workspace.items():
            profiles = any(isinstance(m, (s.ProfileUpdated, ProfileTombstone)) for m in batch)
            loaded = await store.load(ctx.partition, ws, {u for m in batch for u in _users(m)}, index=profiles,
                                      waiting={u for m in batch if isinstance(m, _WAITS) for u in _users(m)})
            await _apply(ctx, store, Batch(ctx, loaded), batch)
            store.save(loaded, ctx.writes, ctx.now.isoformat())

    return StreamService(
        name=SERVICE,
        inputs=[InputTopic(t) for t in (MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED, COHORT_META, IDENTITY_MERGES,
                                        IDENTITY_PROFILES, SEGMENT_HANDOVERS)],
        handlers=[((s.MembershipResolvedBatch, s.MembershipUnmatchedBatch, s.CohortNamed, s.CohortChangesReceived,
                    s.ProfileMergeAnnounced, s.ProfilesMerged, s.ProfileDeleted, s.ProfileUpdated, ProfileTombstone,
                    s.MembershipsHandedOver, s.HandoverCompleted, s.ChangesRedirected), on_task)],
        decode=decode_with_tombstones,
        setup=LayoutMigration(store.client, store.prefix),
    )


_WAITS = (s.ProfileMergeAnnounced, s.ProfilesMerged, s.MembershipsHandedOver, s.ProfileDeleted)
"""The messages whose rules read or change a user's `Wait` (merges on their way): only their
users' waits are loaded, not those of every imported row."""


def _users(message) -> list[str]:
    """The users whose state `message` reads or changes in this task."""
    if isinstance(message, (s.MembershipResolvedBatch, s.ChangesRedirected)):
        return [row[2] for row in message.rows]
    if isinstance(message, s.ProfilesMerged):
        return [message.merged_user_id]
    if isinstance(message, (s.MembershipsHandedOver, s.ProfileMergeAnnounced)):
        return [message.kept_user_id]
    if isinstance(message, s.HandoverCompleted):
        return [message.merged_user_id]
    if isinstance(message, (s.ProfileDeleted, s.ProfileUpdated, ProfileTombstone)):
        return [message.user_id]
    return []


async def _apply(ctx: TaskContext, store: TaskStore, batch: Batch, messages: list) -> None:
    loaded = batch.loaded
    for message in messages:
        if isinstance(message, s.MembershipResolvedBatch):
            batch.imported(message.rows, redirected=False)
        elif isinstance(message, s.ChangesRedirected):
            batch.imported(message.rows, redirected=True, hops=message.hops)
        elif isinstance(message, s.ProfileMergeAnnounced):
            batch.announced(message)
        elif isinstance(message, s.ProfilesMerged):
            batch.merged(message)
        elif isinstance(message, s.MembershipsHandedOver):
            batch.handed_over(message)
        elif isinstance(message, s.HandoverCompleted):
            batch.completed(message)
        elif isinstance(message, s.ProfileDeleted):
            batch.deleted(message)
        elif isinstance(message, (s.ProfileUpdated, ProfileTombstone)):
            await _profile(ctx, store, loaded, message)
        elif isinstance(message, s.CohortNamed):
            cohort = (message.partner, message.cohort_id)
            loaded.names[cohort] = True
            ctx.writes.hset(loaded.layout.counters(loaded.ws, cohort_code(*cohort)), {"nm": message.name})
        elif isinstance(message, s.CohortChangesReceived):
            cohort = (message.partner, message.cohort_id)
            loaded.slice.counters[cohort, "rc"] += message.received
            loaded.slice.counters[cohort, "pd"] += message.dropped_pre_2010
            loaded.names[cohort] = True
        elif isinstance(message, s.MembershipUnmatchedBatch):
            cohort = (message.partner, message.cohort_id)
            for row in message.rows:
                loaded.slice.counters[cohort, f"u:{row[4]}"] += 1
            loaded.names[cohort] = True
    batch.finish()


async def _profile(ctx: TaskContext, store: TaskStore, loaded: Loaded, message) -> None:
    """identity.profiles: the index of the profile's identifiers, its record, "every profile"."""
    user_id, layout, ws = message.user_id, loaded.layout, loaded.ws
    if not rules.accepts_profile_update(loaded.slice, user_id):
        return
    n = loaded.number(user_id)
    old = loaded.index_fields.pop(user_id, [])
    external_id = loaded.external_id(user_id)
    if external_id is not None:
        old = [*old, external_id_field(external_id)]
    holders = await store.index_holders(loaded, old)
    for name in old:
        if holders.get(name) == user_id:
            ctx.writes.hdel(layout.index(ws, name), [name])
    everyone = layout.everyone(ws, n // 512)
    if isinstance(message, ProfileTombstone):
        ctx.writes.hdel(layout.index_fields(ws, n), [n])
        ctx.writes.srem(everyone, [n])
        if user_id not in loaded.slice.gone:
            loaded.slice.mark_gone(user_id, rules.Gone(rules.TOMBSTONED))
        return
    if loaded.slice.gone.pop(user_id, None) is not None:
        loaded.ungone.add(user_id)
    fields = [alias_field(a.alias_label, a.alias_name) for a in message.aliases]
    fields += [device_field(d) for d in message.device_ids]
    external = [external_id_field(message.external_id)] if message.external_id else []
    for name in [*fields, *external]:
        ctx.writes.hset(layout.index(ws, name), {name: user_id})
    if fields:
        ctx.writes.hset(layout.index_fields(ws, n), {n: orjson.dumps(fields)})
    else:
        ctx.writes.hdel(layout.index_fields(ws, n), [n])
    loaded.index_fields[user_id] = fields
    loaded.remember(user_id, message.external_id, from_profile=True)
    ctx.writes.sadd(everyone, [n])
    ctx.writes.hset(layout.user_workspace(user_id), {user_id: ws})
