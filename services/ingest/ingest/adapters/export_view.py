"""The export view in Redis: its key layout (defined here and nowhere else), loading and
saving a task's share for the stream, and the reads `/users/export/ids` makes. (The cohorts
an exported user is in are segment-store's: `adapters/cohort_reader.py`.)

Task p (the partition number of identity.profiles, keyed by user) keeps the profiles that
hash to it, under the hash tag `{ingest:p}` (one Redis Cluster slot per task, so a workspace
spreads over every shard):

    prof:<ws>:<hhh>    hash  user_id → JSON {"x": external ID, "a": [[label, name]], "d": [devices],
                             "t": {attribute: value}}
    ix:<ws>:<hhh>      hash  "x␟<external ID>" | "a␟<label>␟<name>" | "d␟<device>" → user_id
    shared:<ws>:<sha1> set   user IDs whose email ("e␟<lower-cased>") or phone ("p␟…") it is
    uw:<hhh>           hash  user_id → workspace (a tombstone names no workspace)
(<hhh>: the first three hex digits of the field's sha1, so each hash stays small; ␟ is \\x1f.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

import orjson
from cohort_shared import schemas as s
from cohort_shared.publishing import partition_for
from cohort_shared.state.keys import TaskKeys, spread
from cohort_shared.state.writes import WriteSet

from ..domain.braze_export import ExportedProfile
from ..domain.export_view import SEP, ViewSlice, identifier_fields

SERVICE = "ingest"


class ExportReader(Protocol):
    async def holders(self, ws: str, field: str) -> set[str]:
        """Profiles the index names for an identifier or email / phone field (domain/export_view.py)."""
        ...

    async def profiles(self, ws: str, user_ids: Iterable[str]) -> dict[str, ExportedProfile]:
        """The profiles the view holds of `user_ids` (their cohorts left empty)."""
        ...


class ExportLayout:
    def __init__(self, prefix: str, partition: int) -> None:
        self.task = TaskKeys(prefix, SERVICE, partition)

    def profiles(self, ws: str, user_id: str) -> str:
        return self.task.key("prof", ws, spread(user_id))

    def index(self, ws: str, field: str) -> str:
        return self.task.key("ix", ws, spread(field))

    def shared(self, ws: str, field: str) -> str:
        return self.task.key("shared", ws, hashlib.sha1(field.encode()).hexdigest())

    def user_workspace(self, user_id: str) -> str:
        return self.task.key("uw", spread(user_id))


def _exported(user_id: str, raw: bytes) -> ExportedProfile:
    body = orjson.loads(raw)
    return ExportedProfile(
        user_id=user_id, external_id=body.get("x"),
        aliases=[s.Alias(alias_label=label, alias_name=name) for label, name in body.get("a", [])],
        device_ids=list(body.get("d", [])), attributes=body.get("t", {}),
    )


class ExportViewStore:
    """The view on Redis: the stream's loads and saves, and the export's reads."""

    def __init__(self, client, prefix: str, partitions: int) -> None:
        self.client = client
        self.prefix = prefix
        self.partitions = partitions

    def layout(self, partition: int) -> ExportLayout:
        return ExportLayout(self.prefix, partition)

    # ---------------------------------------------------------------- the stream's side

    async def workspaces_of(self, partition: int, user_ids: list[str]) -> dict[str, str]:
        layout = self.layout(partition)
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hget(layout.user_workspace(user_id), user_id)
        return {u: ws.decode() for u, ws in zip(user_ids, await pipe.execute(), strict=True) if ws is not None}

    async def load(self, partition: int, ws: str, user_ids: set[str]) -> ViewSlice:
        """The profiles of `user_ids`, and who holds each of their identifiers."""
        layout, users = self.layout(partition), sorted(user_ids)
        pipe = self.client.pipeline(transaction=False)
        for user_id in users:
            pipe.hget(layout.profiles(ws, user_id), user_id)
        view = ViewSlice(ws)
        for user_id, raw in zip(users, await pipe.execute(), strict=True):
            view.profiles[user_id] = orjson.loads(raw) if raw else None
        fields = sorted({f for p in view.profiles.values() if p for f in identifier_fields(p)})
        if fields:
            pipe = self.client.pipeline(transaction=False)
            for name in fields:
                pipe.hget(layout.index(ws, name), name)
            view.holders = {f: h.decode() if h else None for f, h in zip(fields, await pipe.execute(), strict=True)}
        return view

    def save(self, partition: int, view: ViewSlice, writes: WriteSet) -> None:
        layout, ws = self.layout(partition), view.ws
        for user_id in sorted(view.dirty_profiles):
            profile = view.profiles[user_id]
            if profile is None:
                writes.hdel(layout.profiles(ws, user_id), [user_id])
            else:
                writes.hset(layout.profiles(ws, user_id), {user_id: orjson.dumps(profile)})
        for name in sorted(view.dirty_holders):
            holder = view.holders[name]
            if holder is None:
                writes.hdel(layout.index(ws, name), [name])
            else:
                writes.hset(layout.index(ws, name), {name: holder})
        for (name, user_id), added in sorted(view.shared.items()):
            (writes.sadd if added else writes.srem)(layout.shared(ws, name), [user_id])
        for user_id, home in sorted(view.homes.items()):
            if home is None:
                writes.hdel(layout.user_workspace(user_id), [user_id])
            else:
                writes.hset(layout.user_workspace(user_id), {user_id: home})

    # ---------------------------------------------------------------- the export's reads

    async def holders(self, ws: str, field: str) -> set[str]:
        pipe = self.client.pipeline(transaction=False)
        for task in range(self.partitions):
            layout = self.layout(task)
            if field[0] in "ep":
                pipe.smembers(layout.shared(ws, field))
            else:
                pipe.hget(layout.index(ws, field), field)
        found: set[str] = set()
        for answer in await pipe.execute():
            if isinstance(answer, set):
                found |= {u.decode() for u in answer}
            elif answer:
                found.add(answer.decode())
        return found

    async def profiles(self, ws: str, user_ids: Iterable[str]) -> dict[str, ExportedProfile]:
        users = sorted(set(user_ids))
        if not users:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for user_id in users:
            pipe.hget(self.layout(partition_for(user_id.encode(), self.partitions)).profiles(ws, user_id), user_id)
        return {u: _exported(u, raw) for u, raw in zip(users, await pipe.execute(), strict=True) if raw}


class InMemoryExportView:
    """The export's reads on plain dicts, for unit tests: `add` a profile as the view would hold
    it, with the cohorts segment-store would answer (it serves as the CohortReader too)."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, ExportedProfile]] = {}

    def add(self, ws: str, profile: ExportedProfile) -> None:
        self.users.setdefault(ws, {})[profile.user_id] = profile

    async def holders(self, ws: str, field: str) -> set[str]:
        kind, _, rest = field.partition(SEP)
        label, _, name = rest.partition(SEP)
        named = {"x": ("external_id", rest, None), "a": ("alias", name, label), "d": ("device_id", rest, None),
                 "e": ("email", rest, None), "p": ("phone", rest, None)}[kind]
        return {u for u, p in self.users.get(ws, {}).items() if p.holds(*named)}

    async def profiles(self, ws: str, user_ids: Iterable[str]) -> dict[str, ExportedProfile]:
        known = self.users.get(ws, {})
        return {u: replace(known[u], cohorts=[]) for u in user_ids if u in known}

    async def cohorts_of(self, ws: str, user_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
        known = self.users.get(ws, {})
        return {u: known[u].cohorts if u in known else [] for u in user_ids}
