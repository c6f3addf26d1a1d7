"""The identity book in Redis: its key layout (defined here and nowhere else), loading the
part of a workspace's book a batch needs, and writing back what the rules changed.

A workspace's book lives in the task of the partition its identity.events go to
(`book_partition`), under that task's hash tag, and only that task writes it: profile
operations and parking are applied in one place, in order. Everyone else reads it.

    x:<ws>:<hhh>        hash  external ID → user ID
    a:<ws>:<hhh>        hash  alias key (identifiers.alias_key) → user ID
    d:<ws>:<hhh>        hash  device ID → user ID
    p:<ws>:<hhh>        hash  user ID → profile, JSON {"c": created_as, "x": external ID,
                              "a": [alias keys], "d": [device IDs], "t": {attribute: value}}
    park:<ws>:<park key>        hash  '<partner>:<cohort>' → parked change (JSON); expires
                                      with the park window
    parkcount:<ws>              hash  expiry bucket (10 minutes) → changes parked
    fwd:<ws>:<park key>         string  changes of this identifier forwarded to the book and
                                        not yet committed by it (entrypoints/stream.py); 1 hour
    req:<ws>:<request ID>       string  report of an identity request (7 days)
    skipped:<ws>                hash  reason → identity entries skipped, ever
(<hhh>: the first three hex digits of the field's sha1, so each hash stays small.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime

import orjson
from cohort_shared.publishing import partition_for
from cohort_shared.schemas import Identifier, IdentifierLike
from cohort_shared.state.keys import TaskKeys, spread
from cohort_shared.state.reads import ReadBatch, mget
from cohort_shared.state.writes import WriteSet

from ..domain.book import Book, ParkedChange, Profile, park_key
from ..domain.identifiers import alias_key
from ..settings import SERVICE

FORWARDED_SECONDS = 3600
REPORT_SECONDS = 7 * 24 * 3600
_TABLES = {"external_id": "x", "alias": "a", "device_id": "d"}


def book_partition(workspace_id: str, partitions: int) -> int:
    """The task that keeps `workspace_id`'s book: where its identity.events are keyed."""
    return partition_for(workspace_id.encode(), partitions)


def lookup_field(identifier: IdentifierLike) -> tuple[str, str]:
    """(table, field) where `identifier` is looked up."""
    if identifier.kind == "alias":
        return "a", alias_key(identifier.label or "", identifier.value)
    return _TABLES[identifier.kind], identifier.value


class BookLayout:
    """Keys of the books kept by one task."""

    def __init__(self, prefix: str, partition: int) -> None:
        self.task = TaskKeys(prefix, SERVICE, partition)

    def table(self, ws: str, table: str, field: str) -> str:
        return self.table_at(ws, table) + spread(field)

    def profile(self, ws: str, user_id: str) -> str:
        return self.profiles_at(ws) + spread(user_id)

    # The start of the keys above, for a batch that builds one per identifier or user: the
    # bucket is all that differs.
    def table_at(self, ws: str, table: str) -> str:
        return self.task.within(table, ws)

    def profiles_at(self, ws: str) -> str:
        return self.task.within("p", ws)

    def park(self, ws: str, key: str) -> str:
        return self.task.key("park", ws, key)

    def park_counts(self, ws: str) -> str:
        return self.task.key("parkcount", ws)

    def forwarded(self, ws: str, key: str) -> str:
        return self.forwarded_at(ws) + key

    def forwarded_at(self, ws: str) -> str:
        return self.task.within("fwd", ws)

    def report(self, ws: str, request_id: str) -> str:
        return self.task.key("req", ws, request_id)

    def skipped(self, ws: str) -> str:
        return self.task.key("skipped", ws)


def encode_profile(profile: Profile) -> bytes:
    body: dict = {"c": profile.created_as}
    if profile.external_id is not None:
        body["x"] = profile.external_id
    if profile.aliases:
        body["a"] = sorted(profile.aliases)
    if profile.devices:
        body["d"] = sorted(profile.devices)
    if profile.attributes:
        body["t"] = profile.attributes
    return orjson.dumps(body)


def decode_profile(user_id: str, raw: bytes) -> Profile:
    body = orjson.loads(raw)
    return Profile(user_id, body["c"], body.get("x"), set(body.get("a", ())), set(body.get("d", ())),
                   dict(body.get("t", {})))


def _encode_parked(parked: ParkedChange) -> bytes:
    return orjson.dumps({
        "p": parked.partner, "c": parked.cohort_id, "ch": parked.change, "k": parked.identifier.kind,
        "v": parked.identifier.value, "l": parked.identifier.label, "s": parked.source_id,
        "at": parked.accepted_at.isoformat(), "u": parked.until_ms,
    })


def _decode_parked(raw: bytes) -> ParkedChange:
    body = orjson.loads(raw)
    return ParkedChange(body["p"], body["c"], body["ch"], Identifier(kind=body["k"], value=body["v"], label=body["l"]),
                        body["s"], datetime.fromisoformat(body["at"]), body["u"])


class BookStore:
    """Loads and saves parts of books through one Redis client."""

    def __init__(self, client, prefix: str, partitions: int) -> None:
        self.client = client
        self.prefix = prefix
        self.partitions = partitions

    def layout(self, workspace_id: str) -> BookLayout:
        return BookLayout(self.prefix, book_partition(workspace_id, self.partitions))

    # ---------------------------------------------------------------- reading

    async def lookups(self, ws: str, identifiers: Iterable[IdentifierLike]) -> dict[tuple[str, str], str]:
        """(table, field) → user ID for those of `identifiers` that name a profile, in the
        order they are first named."""
        layout = self.layout(ws)
        return await self._hmget_spread(layout, ws, list(dict.fromkeys(map(lookup_field, identifiers))))

    async def for_matching(self, ws: str, identifiers: Iterable[IdentifierLike]) -> Book:
        """What matching (`domain.matching.match`) reads of `ws`'s book for `identifiers`, read
        only: their lookups and the profiles those name. A profile named only by an external
        ID is not read: the book writes an external ID's lookup and its profile's external ID
        in one commit, and never changes or reuses a profile's external ID (`Book`'s
        `set_external_id`, `remove`; merges drop the merged one's), so the lookup already says
        all matching reads of it (that it exists, is identified, and its IDs). Most cohort
        changes name external IDs: this halves the reads of the direct path."""
        book = Book(ws)
        tables = _tables(book)
        for (table, field), user_id in (await self.lookups(ws, identifiers)).items():
            tables[table][field] = user_id
        wanted = {*book.aliases.values(), *book.devices.values()}
        book.profiles.update(await self.profiles(ws, wanted))
        for external_id, user_id in book.external_ids.items():
            if user_id not in wanted:  # stands in for the profile: only its IDs are read
                book.profiles[user_id] = Profile(user_id, "identified", external_id)
        return book

    async def _hmget_spread(self, layout: BookLayout, ws: str, wanted: list[tuple[str, str]]) -> dict:
        by_key: dict[str, list[tuple[str, str]]] = {}
        at = {table: layout.table_at(ws, table) for table in _TABLES.values()}
        for table, field in wanted:
            by_key.setdefault(at[table] + spread(field), []).append((table, field))
        if not by_key:
            return {}
        reads = ReadBatch(self.client)
        for key, items in by_key.items():
            reads.hmget(key, [f for _, f in items])
        found = {}
        for items, values in zip(by_key.values(), await reads.run(), strict=True):
            for item, value in zip(items, values, strict=True):
                if value is not None:
                    found[item] = value.decode()
        return found

    async def profiles(self, ws: str, user_ids: Iterable[str]) -> dict[str, Profile]:
        layout = self.layout(ws)
        by_key: dict[str, list[str]] = {}
        at = layout.profiles_at(ws)
        for user_id in sorted(set(user_ids)):
            by_key.setdefault(at + spread(user_id), []).append(user_id)
        if not by_key:
            return {}
        reads = ReadBatch(self.client)
        for key, users in by_key.items():
            reads.hmget(key, users)
        found = {}
        for users, values in zip(by_key.values(), await reads.run(), strict=True):
            for user_id, raw in zip(users, values, strict=True):
                if raw is not None:
                    found[user_id] = decode_profile(user_id, raw)
        return found

    async def in_flight(self, ws: str, identifiers: Iterable[IdentifierLike]) -> set[str]:
        """Park keys of `identifiers` with changes forwarded to the book and not yet committed."""
        keys = list(dict.fromkeys(map(park_key, identifiers)))
        if not keys:
            return set()
        at = self.layout(ws).forwarded_at(ws)
        values = await mget(self.client, [at + k for k in keys])
        return {k for k, v in zip(keys, values, strict=True) if v is not None and int(v) > 0}

    async def forwarding(self, ws: str, counts: dict[str, int]) -> None:
        """Before changes are forwarded: count them per identifier, so the direct path holds
        back until the book committed them. Not state (nothing is tracked): a count left too
        high, by a replay or a crash, only sends that identifier round the book until it
        expires."""
        layout = self.layout(ws)
        pipe = self.client.pipeline(transaction=False)
        for key, n in counts.items():
            pipe.incrby(layout.forwarded(ws, key), n)
            pipe.expire(layout.forwarded(ws, key), FORWARDED_SECONDS)
        await pipe.execute()

    def forwarded_done(self, ws: str, counts: dict[str, int], writes: WriteSet) -> None:
        """After the book's Kafka commit: those forwarded changes are out."""
        layout = self.layout(ws)
        for key, n in counts.items():
            writes.incrby(layout.forwarded(ws, key), -n)

    async def load(self, ws: str, identifiers: Iterable[Identifier], with_parking: bool,
                   user_ids: Iterable[str] = ()) -> Book:
        """The part of `ws`'s book the rules may touch when applying entries that name
        `identifiers` (and profiles by internal ID, `user_ids`): their lookups, the profiles
        they name with all of those profiles' identifiers, and (with parking) their parked
        changes and the park counts."""
        identifiers = list(identifiers)
        book = Book(ws)
        named = await self.lookups(ws, identifiers)
        profiles = await self.profiles(ws, [*named.values(), *user_ids])
        owned = [(t, f) for p in profiles.values() for t, f in _identifiers_of(p)]
        layout = self.layout(ws)
        others = await self._hmget_spread(layout, ws, sorted(set(owned) - named.keys()))
        tables = _tables(book)
        for (table, field), user_id in {**named, **others}.items():
            tables[table][field] = user_id
        book.profiles.update(profiles)
        if with_parking:
            keys = sorted({park_key(i) for i in identifiers})
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(layout.park(ws, key))
            pipe.hgetall(layout.park_counts(ws))
            *parked, counts = await pipe.execute()
            for key, entries in zip(keys, parked, strict=True):
                if entries:
                    book.parked[key] = {f.decode(): _decode_parked(v) for f, v in entries.items()}
            book.parked_counts = {int(b): int(n) for b, n in counts.items()}
        book.loaded = copy.deepcopy(_state(book))
        return book

    # ---------------------------------------------------------------- writing

    def save(self, book: Book, writes: WriteSet, park_window_seconds: int) -> None:
        """What the rules changed in `book` since `load`, as writes."""
        ws, layout = book.workspace_id, self.layout(book.workspace_id)
        before, after = book.loaded, _state(book)
        for table in ("x", "a", "d"):
            old, new = before[table], after[table]
            for field, user_id in new.items():
                if old.get(field) != user_id:
                    writes.hset(layout.table(ws, table, field), {field: user_id})
            gone = [f for f in old if f not in new]
            for field in gone:
                writes.hdel(layout.table(ws, table, field), [field])
        for user_id, encoded in after["p"].items():
            if before["p"].get(user_id) != encoded:
                writes.hset(layout.profile(ws, user_id), {user_id: encoded})
        for user_id in before["p"].keys() - after["p"].keys():
            writes.hdel(layout.profile(ws, user_id), [user_id])
        for key in before["park"].keys() | after["park"].keys():
            old, new = before["park"].get(key, {}), after["park"].get(key, {})
            if old == new:
                continue
            if not new:
                writes.delete(layout.park(ws, key))
                continue
            changed = {f: v for f, v in new.items() if old.get(f) != v}
            if changed:
                writes.hset(layout.park(ws, key), changed)
            if old.keys() - new.keys():
                writes.hdel(layout.park(ws, key), sorted(old.keys() - new.keys()))
            writes.expire(layout.park(ws, key), park_window_seconds)
        if before["counts"] != after["counts"]:
            dropped = [b for b in before["counts"] if b not in after["counts"]]
            if dropped:
                writes.hdel(layout.park_counts(ws), dropped)
            if after["counts"]:
                writes.hset(layout.park_counts(ws), after["counts"])

    def save_report(self, ws: str, writes: WriteSet, report: dict, skipped: dict[str, int]) -> None:
        layout = self.layout(ws)
        writes.set(layout.report(ws, report["request_id"]), orjson.dumps(report), expire_seconds=REPORT_SECONDS)
        for reason, n in skipped.items():
            writes.hincrby(layout.skipped(ws), reason, n)

    async def report(self, ws: str, request_id: str) -> dict | None:
        raw = await self.client.get(self.layout(ws).report(ws, request_id))
        return orjson.loads(raw) if raw is not None else None

    async def skipped(self, ws: str) -> dict[str, int]:
        raw = await self.client.hgetall(self.layout(ws).skipped(ws))
        return {reason.decode(): int(n) for reason, n in sorted(raw.items())}


def _identifiers_of(profile: Profile) -> list[tuple[str, str]]:
    found = [("a", key) for key in profile.aliases] + [("d", device) for device in profile.devices]
    if profile.external_id is not None:
        found.append(("x", profile.external_id))
    return found


def _tables(book: Book) -> dict[str, dict[str, str]]:
    return {"x": book.external_ids, "a": book.aliases, "d": book.devices}


def _state(book: Book) -> dict:
    """What `save` compares: lookups, encoded profiles, encoded parked changes, counts."""
    return {
        "x": dict(book.external_ids), "a": dict(book.aliases), "d": dict(book.devices),
        "p": {u: encode_profile(p) for u, p in book.profiles.items()},
        "park": {k: {f: _encode_parked(c) for f, c in v.items()} for k, v in book.parked.items() if v},
        "counts": {b: n for b, n in book.parked_counts.items() if n},
    }


class ProfileFinder:
    """Finds the profile a user_ref names, for the operator API."""

    def __init__(self, store: BookStore) -> None:
        self.store = store

    async def find(self, ws: str, ref) -> Profile | None:
        """By internal ID, external_id:, alias:<label>:<name> or device_id: (a device names its
        holder even when cohort import may no longer match it)."""
        if ref.kind == "user_id":
            return (await self.store.profiles(ws, [ref.value])).get(ref.value)
        identifier = Identifier(kind=ref.kind, value=ref.value, label=ref.label)
        user_id = (await self.store.lookups(ws, [identifier])).get(lookup_field(identifier))
        return None if user_id is None else (await self.store.profiles(ws, [user_id])).get(user_id)
