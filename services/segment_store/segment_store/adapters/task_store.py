"""Loading the part of a task's state one batch needs, and writing back what the rules changed
(layout.py says where everything lives; domain/membership.py says what changes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from cohort_shared.state.keys import spread
from cohort_shared.state.reads import ReadBatch
from cohort_shared.state.writes import WriteSet

from ..domain.membership import MERGED, Cohort, Gone, Slice, Wait
from .layout import (
    INLINE,
    SEP,
    Layout,
    bucket,
    cohort_code,
    decode_entry,
    decode_record,
    encode_entry,
    encode_record,
    hash_bucket,
)


@dataclass
class Loaded:
    """A slice and what the store needs to write it back."""

    layout: Layout
    slice: Slice
    numbers: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    first_new: int = 0
    records: dict[str, tuple[str | None, bool]] = field(default_factory=dict)  # user -> (external ID, from profile)
    records_now: dict[str, tuple[str | None, bool]] = field(default_factory=dict)  # those `remember` set
    before: dict[str, frozenset[Cohort]] = field(default_factory=dict)
    index_fields: dict[str, list[str]] = field(default_factory=dict)  # user -> its alias/device index fields
    names: dict[Cohort, bool] = field(default_factory=dict)  # cohorts to register in this task
    ungone: set[str] = field(default_factory=set)
    spreads: dict[str, str] = field(default_factory=dict)  # user -> its bucket of hashes keyed by user ID

    def spread(self, user_id: str) -> str:
        """`spread(user_id)`, worked out once per batch."""
        found = self.spreads.get(user_id)
        if found is None:
            found = self.spreads[user_id] = spread(user_id)
        return found

    @property
    def ws(self) -> str:
        return self.slice.workspace_id

    def number(self, user_id: str) -> int:
        """The user's number in this task, given now if it has none."""
        n = self.numbers.get(user_id)
        if n is None:
            self.seq += 1
            n = self.numbers[user_id] = self.seq
        return n

    def record(self, user_id: str) -> tuple[str | None, bool] | None:
        """The user's record as the batch left it so far (None if it has none)."""
        return self.records_now.get(user_id) or self.records.get(user_id)

    def external_id(self, user_id: str) -> str | None:
        return (self.record(user_id) or (None, False))[0]

    def remember(self, user_id: str, external_id: str | None, from_profile: bool = False) -> None:
        """A user seen in a change or a profile: numbered, recorded with its external ID
        (identity.profiles knows better than a change, so a change never overwrites it)."""
        self.number(user_id)
        record = self.record(user_id)
        known, was_profile = record or (None, False)
        if from_profile:
            self.records_now[user_id] = (external_id, True)
        elif not was_profile and (record is None or (external_id and external_id != known)):
            self.records_now[user_id] = (external_id or known, False)


class TaskStore:
    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def layout(self, partition: int) -> Layout:
        return Layout(self.prefix, partition)

    async def load(self, partition: int, ws: str, users: Iterable[str], *, index: bool = False,
                   waiting: Iterable[str] = ()) -> Loaded:
        """The users' numbers, records, whether they are gone, all their cohorts (with `index`,
        the index fields of their profiles; the waits of the users in `waiting`)."""
        layout = self.layout(partition)
        users = sorted(set(users))
        loaded = Loaded(layout, Slice(ws))
        reads = Reads(self.client)
        seq = reads.get(layout.seq(ws))
        entries = reads.hmget(users, loaded.spread, [layout.numbers_at(ws)])[0]
        waits = reads.hmget(sorted(set(waiting)), loaded.spread, [layout.wait_at(ws)])[0]
        await reads.run()
        loaded.seq = loaded.first_new = int(seq.value or 0)
        for user_id, raw in entries.value.items():
            n, gone = decode_entry(raw)
            if n is not None:
                loaded.numbers[user_id] = n
            if gone is not None:
                loaded.slice.gone[user_id] = Gone(MERGED, gone[2:]) if gone[0] == MERGED else Gone(gone)
        for user_id, raw in waits.value.items():
            wait = orjson.loads(raw)
            loaded.slice.waits[user_id] = Wait(set(wait["a"]), set(wait["e"]), wait["h"])
        known = sorted(loaded.numbers)
        number = loaded.numbers.__getitem__
        reads = Reads(self.client)
        at = [layout.records_at(ws), layout.reverse_at(ws)] + ([layout.index_fields_at(ws)] if index else [])
        records, reverse, *fields = reads.hmget(known, lambda u: hash_bucket(number(u)), at, field=number)
        await reads.run()
        for user_id, raw in records.value.items():
            _, external_id, from_profile = decode_record(raw)
            loaded.records[user_id] = (external_id, from_profile)
        if fields:
            loaded.index_fields = {u: orjson.loads(raw) for u, raw in fields[0].value.items()}
        codes = await self._cohort_codes(layout, ws, reverse.value, loaded.numbers)
        names = await self._registered(layout, ws, {c for cs in codes.values() for c in cs})
        for user_id in users:
            loaded.slice.cohorts_of[user_id] = {names[c] for c in codes.get(user_id, ()) if c in names}
        loaded.before = {u: frozenset(cs) for u, cs in loaded.slice.cohorts_of.items()}
        return loaded

    async def _cohort_codes(self, layout: Layout, ws: str, reverse: dict[str, bytes],
                            numbers: dict[str, int]) -> dict[str, list[str]]:
        """Each user's cohort codes: inline, or from the set of a user in many cohorts."""
        codes = {u: raw.decode().split() for u, raw in reverse.items() if raw != b"*"}
        heavy = [u for u, raw in reverse.items() if raw == b"*"]
        if heavy:
            pipe = self.client.pipeline(transaction=False)
            for user_id in heavy:
                pipe.smembers(layout.reverse_set(ws, numbers[user_id]))
            for user_id, members in zip(heavy, await pipe.execute(), strict=True):
                codes[user_id] = [m.decode() for m in members]
        return codes

    async def _registered(self, layout: Layout, ws: str, codes: set[str]) -> dict[str, Cohort]:
        if not codes:
            return {}
        ordered = sorted(codes)
        raw = await self.client.hmget(layout.cohorts(ws), ordered)
        return {code: tuple(value.decode().split(SEP, 1)) for code, value in zip(ordered, raw, strict=True) if value}

    async def workspace_of(self, partition: int, user_ids: list[str]) -> dict[str, str]:
        """Where identity.profiles tombstones (which name no workspace) belong."""
        layout = self.layout(partition)
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hget(layout.user_workspace(user_id), user_id)
        return {u: ws.decode() for u, ws in zip(user_ids, await pipe.execute(), strict=True) if ws}

    async def index_holders(self, loaded: Loaded, fields: list[str]) -> dict[str, str]:
        """Who holds each profile index field now (to drop only a user's own)."""
        if not fields:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for name in fields:
            pipe.hget(loaded.layout.index(loaded.ws, name), name)
        return {f: v.decode() for f, v in zip(fields, await pipe.execute(), strict=True) if v}

    # ---------------------------------------------------------------- writing

    def save(self, loaded: Loaded, writes: WriteSet, now: str) -> None:
        layout, ws, s = loaded.layout, loaded.ws, loaded.slice
        # Each kind of write gathered by the key it goes to first, one command per key (users
        # of one bucket, members of one cohort bucket): a call per user was a tenth of the
        # service's CPU in an import.
        if loaded.seq != loaded.first_new:
            writes.set(layout.seq(ws), loaded.seq)
        new = [u for u, n in loaded.numbers.items() if n > loaded.first_new]
        entries, dropped, everyone = defaultdict(list), defaultdict(list), defaultdict(list)
        for user_id in dict.fromkeys([*new, *s.gone_now, *loaded.ungone]):  # numbered or gone (or back) now
            n, gone = loaded.numbers.get(user_id), s.gone.get(user_id)
            if n is None and gone is None:
                dropped[loaded.spread(user_id)].append(user_id)
            else:
                why = None if gone is None else gone.why + (SEP + gone.kept if gone.kept else "")
                entries[loaded.spread(user_id)] += (user_id, encode_entry(n, why))
        _grouped(writes.hset_pairs, layout.numbers_at(ws), entries)
        _grouped(writes.hdel, layout.numbers_at(ws), dropped)
        for user_id in new:
            if s.gone.get(user_id) is None:
                n = loaded.numbers[user_id]
                everyone[bucket(n)].append(n)
        _grouped(writes.sadd, layout.everyone_at(ws), everyone)
        records = defaultdict(list)
        for user_id, record in loaded.records_now.items():
            if loaded.records.get(user_id) != record:
                n = loaded.numbers[user_id]
                records[hash_bucket(n)] += (n, encode_record(user_id, *record))
        _grouped(writes.hset_pairs, layout.records_at(ws), records)
        added, removed = defaultdict(list), defaultdict(list)
        for (cohort, user_id), member in s.flips.items():
            n = loaded.numbers[user_id]
            (added if member else removed)[cohort_code(*cohort), bucket(n)].append(n)
        for (code, b), ns in added.items():
            writes.sadd(layout.members(ws, code, b), ns)
        for (code, b), ns in removed.items():
            writes.srem(layout.members(ws, code, b), ns)
        self._save_reverse(loaded, writes)
        for cohort in s.touched | loaded.names.keys():
            code = cohort_code(*cohort)
            writes.hset(layout.cohorts(ws), {code: SEP.join(cohort)})
            writes.hset(layout.counters(ws, code), {"p": cohort[0], "c": cohort[1], "ua": now})
        for (cohort, name), delta in s.counters.items():
            writes.hincrby(layout.counters(ws, cohort_code(*cohort)), name, delta)
        writes.incrby(layout.usage(ws), s.usage)
        if s.usage:  # by the hour it was applied in, for the console's chart over time
            writes.hincrby(layout.usage_hours(ws), now[:13], s.usage)
        for user_id in s.gone_now:
            if user_id in loaded.numbers:
                n = loaded.numbers[user_id]
                writes.srem(layout.everyone(ws, bucket(n)), [n])
        for user_id in s.waits_now:
            wait = s.waits[user_id]
            if wait:
                value = orjson.dumps({"a": sorted(wait.announced), "e": sorted(wait.early), "h": wait.held})
                writes.hset(layout.wait(ws, user_id), {user_id: value})
            else:
                writes.hdel(layout.wait(ws, user_id), [user_id])

    def _save_reverse(self, loaded: Loaded, writes: WriteSet) -> None:
        """Each user whose cohorts changed: their codes inline in `uc:`, or (beyond INLINE)
        in a set of their own that `uc:` points to."""
        layout, ws = loaded.layout, loaded.ws
        inline, dropped = defaultdict(list), defaultdict(list)
        for user_id, cohorts in loaded.slice.cohorts_of.items():
            before = loaded.before.get(user_id, _NONE)
            if before == cohorts:
                continue
            n = loaded.numbers[user_id]
            codes = sorted([cohort_code(*c) for c in cohorts])
            if len(before) > INLINE:
                writes.delete(layout.reverse_set(ws, n))
            if not codes:
                dropped[hash_bucket(n)].append(n)
            elif len(codes) <= INLINE:
                inline[hash_bucket(n)] += (n, " ".join(codes))
            else:
                writes.sadd(layout.reverse_set(ws, n), codes)
                inline[hash_bucket(n)] += (n, "*")
        _grouped(writes.hdel, layout.reverse_at(ws), dropped)
        _grouped(writes.hset_pairs, layout.reverse_at(ws), inline)


_NONE: frozenset = frozenset()


def _grouped(write, prefix: str, by_bucket: dict) -> None:
    """`write(prefix + bucket, items)` for each bucket, in bucket order."""
    for b in sorted(by_bucket):
        write(prefix + str(b), by_bucket[b])


class _Answer:
    value: object = None


class Reads:
    """Reads sent together (`ReadBatch`): single GETs, and HMGETs of many items grouped by the
    bucket each lives in; after `run`, each queued read's `.value` holds its answer (an
    HMGET's: the items found, with their raw values)."""

    def __init__(self, client) -> None:
        self._batch = ReadBatch(client)
        self._parsers: list = []

    def get(self, key: str) -> _Answer:
        answer = _Answer()
        self._batch.add("GET", key)

        def parse(values):
            answer.value = next(values)
        self._parsers.append(parse)
        return answer

    def hmget(self, items: list[str], bucket_of, prefixes: list[str], field=None) -> list[_Answer]:
        """One answer per key prefix: each item is read from `prefix + bucket_of(item)`, in
        the field `field(item)` (the item itself without `field`). The buckets are worked
        out once for all the prefixes."""
        answers = [_Answer() for _ in prefixes]
        groups: dict[str, list[str]] = defaultdict(list)
        for item in items:
            groups[str(bucket_of(item))].append(item)
        hmget = self._batch.hmget
        for b, members in groups.items():
            fields = [field(m) for m in members] if field else members
            for prefix in prefixes:
                hmget(prefix + b, fields)

        def parse(values):
            found: list[dict] = [{} for _ in prefixes]
            for members in groups.values():
                for into in found:
                    for member, value in zip(members, next(values), strict=True):
                        if value is not None:
                            into[member] = value
            for answer, into in zip(answers, found, strict=True):
                answer.value = into
        self._parsers.append(parse)
        return answers

    async def run(self) -> None:
        values = iter(await self._batch.run())
        for parse in self._parsers:
            parse(values)
