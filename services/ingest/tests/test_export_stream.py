"""The export view's stream handler on a store in memory: which messages reach which
workspace's view, tombstones included."""

from datetime import UTC, datetime

from cohort_shared import schemas as s
from cohort_shared.settings import CommonSettings
from cohort_shared.state.keys import TaskKeys
from cohort_shared.stream.service import TaskContext
from ingest.domain.export_view import ViewSlice
from ingest.entrypoints.export_stream import ProfileTombstone, export_view_service

NOW = datetime(2026, 1, 21, tzinfo=UTC)
ADA, BOB = "u" + "a" * 23, "u" + "b" * 23


class StoreInMemory:
    def __init__(self, homes: dict[str, str]) -> None:
        self.homes = homes
        self.saved: list[ViewSlice] = []

    async def workspaces_of(self, partition, user_ids):
        return {u: self.homes[u] for u in user_ids if u in self.homes}

    async def load(self, partition, ws, user_ids):
        return ViewSlice(ws, profiles=dict.fromkeys(user_ids))

    def save(self, partition, view, writes):
        self.saved.append(view)


def updated(user_id: str, ws: str = "acme") -> s.ProfileUpdated:
    return s.ProfileUpdated(workspace_id=ws, user_id=user_id, external_id=user_id[:3], identified=True, updated_at=NOW)


async def handle(store: StoreInMemory, messages: list) -> dict[str, ViewSlice]:
    service = export_view_service(store)
    ctx = TaskContext(0, TaskKeys("", "ingest", 0), None, CommonSettings(), NOW, {})
    [(_, on_task)] = service.handlers
    await on_task(ctx, messages)
    return {view.ws: view for view in store.saved}


async def test_a_tombstone_after_its_profiles_first_update_in_one_batch_forgets_it():
    views = await handle(StoreInMemory({}), [updated(ADA), ProfileTombstone(ADA)])
    assert views["acme"].profiles[ADA] is None and views["acme"].homes[ADA] is None


async def test_a_tombstone_finds_its_workspace_in_the_store_and_one_never_seen_is_dropped():
    views = await handle(StoreInMemory({BOB: "globex"}), [ProfileTombstone(BOB), ProfileTombstone(ADA), updated(ADA, "acme")])
    assert views["globex"].profiles[BOB] is None
    assert views["acme"].profiles[ADA] is not None  # the tombstone came before anything of ADA was known


def test_the_view_follows_identity_profiles_alone():
    """Memberships are segment-store's (the export asks it): the view reads no membership or cohort topic."""
    [topic] = [i.base for i in export_view_service(StoreInMemory({})).inputs]
    assert topic == "identity.profiles"
