"""The export view's stream, on the shared engine (`cohort_shared.stream.engine`), in its own
consumer group `<TOPIC_PREFIX>ingest-export`: identity.profiles (the profiles, their
identifiers and attributes) becomes the view `/users/export/ids` reads
(`adapters/export_view.py`; rules in `domain/export_view.py`). The cohorts of an exported
profile are read from segment-store when asked (`adapters/cohort_reader.py`), so the view
does not follow membership.changes, the pipeline's busiest topic.

Delivery: the engine's — each task's writes, tracking and fence in one Redis commit, the
offsets in one Kafka transaction — so a replay applies nothing twice. It publishes nothing
but dead letters.
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
from cohort_shared.topics import IDENTITY_PROFILES

from ..adapters.export_view import SERVICE, ExportViewStore

GROUP = "ingest-export"


def export_view_service(store: ExportViewStore) -> StreamService:
    """The stream side of the export view (see the module docstring)."""

    async def on_task(ctx: TaskContext, messages: list) -> None:
        tombstoned = [m.user_id for m in messages if isinstance(m, ProfileTombstone)]
        homes = await store.workspaces_of(ctx.partition, tombstoned) if tombstoned else {}
        by_workspace: dict[str, list] = defaultdict(list)
        for message in messages:
            if isinstance(message, s.ProfileUpdated):
                homes[message.user_id] = message.workspace_id  # for a tombstone later in this batch
            ws = homes.get(message.user_id) if isinstance(message, ProfileTombstone) else message.workspace_id
            if ws is not None:  # a tombstone of a profile never seen: nothing to forget
                by_workspace[ws].append(message)
        for ws, batch in by_workspace.items():
            view = await store.load(ctx.partition, ws, {m.user_id for m in batch})
            for message in batch:
                if isinstance(message, s.ProfileUpdated):
                    view.profile_updated(message)
                else:
                    view.profile_gone(message.user_id)
            store.save(ctx.partition, view, ctx.writes)

    return StreamService(
        name=SERVICE,
        inputs=[InputTopic(IDENTITY_PROFILES)],
        handlers=[((s.ProfileUpdated, ProfileTombstone), on_task)],
        decode=decode_with_tombstones,
    )
