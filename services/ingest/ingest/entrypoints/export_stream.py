"""The export view's stream, on the shared engine (`cohort_shared.stream.engine`), in its own
consumer group `<TOPIC_PREFIX>ingest-export`: identity.profiles (the profiles, their
identifiers and attributes), membership.changes (the public stream: each profile's cohorts)
and cohort.meta (the cohorts' names) become the view `/users/export/ids` reads
(`adapters/export_view.py`; rules in `domain/export_view.py`).

Delivery: the engine's — each task's writes, tracking and fence in one Redis commit, the
offsets in one Kafka transaction — so a replay applies nothing twice. It publishes nothing
but dead letters. Inputs are co-partitioned (every topic has TOPIC_PARTITIONS); a profile's
records and its membership events share the partition of its user ID.
"""

from __future__ import annotations

from collections import defaultdict

from cohort_shared import schemas as s
from cohort_shared.stream.service import (
    InputTopic,
    ProfileTombstone,
    StreamService,
    TaskContext,
    decode_with_tombstones,
)
from cohort_shared.topics import COHORT_META, IDENTITY_PROFILES, MEMBERSHIP_CHANGES

from ..adapters.export_view import SERVICE, ExportViewStore

GROUP = "ingest-export"


def export_view_service(store: ExportViewStore) -> StreamService:
    """The stream side of the export view (see the module docstring)."""

    async def on_task(ctx: TaskContext, messages: list) -> None:
        tombstoned = [m.user_id for m in messages if isinstance(m, ProfileTombstone)]
        homes = await store.workspaces_of(ctx.partition, tombstoned) if tombstoned else {}
        by_workspace: dict[str, list] = defaultdict(list)
        for message in messages:
            if isinstance(message, s.CohortChangesReceived):
                continue  # sync-report counts: nothing the export shows
            if isinstance(message, s.ProfileUpdated):
                homes[message.user_id] = message.workspace_id  # for a tombstone later in this batch
            ws = homes.get(message.user_id) if isinstance(message, ProfileTombstone) else message.workspace_id
            if ws is not None:  # a tombstone of a profile never seen: nothing to forget
                by_workspace[ws].append(message)
        for ws, batch in by_workspace.items():
            users = {m.user_id for m in batch if not isinstance(m, s.CohortNamed)}
            view = await store.load(ctx.partition, ws, users)
            for message in batch:
                if isinstance(message, s.ProfileUpdated):
                    view.profile_updated(message)
                elif isinstance(message, ProfileTombstone):
                    view.profile_gone(message.user_id)
                elif isinstance(message, s.MembershipChanged):
                    view.membership_changed(message)
                else:
                    view.cohort_named(message)
            store.save(ctx.partition, view, ctx.writes)

    return StreamService(
        name=SERVICE,
        inputs=[InputTopic(IDENTITY_PROFILES), InputTopic(MEMBERSHIP_CHANGES), InputTopic(COHORT_META)],
        handlers=[((s.ProfileUpdated, ProfileTombstone, s.MembershipChanged, s.CohortNamed, s.CohortChangesReceived),
                   on_task)],
        decode=decode_with_tombstones,
    )
