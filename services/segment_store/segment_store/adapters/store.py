"""Reads of segment-store's state (layout.py) for the operator API. A workspace's state is
spread over every task, so each read asks every task and adds up their shares; a member
listing walks the tasks one after the other. Nothing here writes memberships: only the
stream does. Segment definitions are written here (they are workspace data, not a task's)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import orjson
from cohort_shared.publishing import partition_for
from cohort_shared.state.lua_script import LuaScript

from ..domain.user_refs import UserRef
from .layout import HASH_WIDTH, SEP, WIDTH, Layout, bucket, decode_entry, decode_record, ref_field, segments_key

EVALUATE = LuaScript(resources.files(__package__).joinpath("lua", "evaluate_segment.lua").read_text())
TASK_SPAN = 1 << 40
"""A member's place in a listing: task * TASK_SPAN + its number in that task."""
SUMMED = ("mc", "ap", "al", "rc", "pd")


@dataclass(frozen=True)
class Member:
    place: int
    user_id: str
    external_id: str | None


@dataclass(frozen=True)
class FoundUser:
    user_id: str
    task: int
    number: int
    cohorts: list[tuple[str, str]]
    """(partner, cohort_id) of each cohort the user is in"""


class Store:
    """Redis reads for one service instance; every method is scoped to one workspace."""

    def __init__(self, client, key_prefix: str, partitions: int, buckets_per_call: int) -> None:
        self.redis = client
        self.key_prefix = key_prefix
        self.partitions = partitions
        self.buckets_per_call = buckets_per_call

    def layout(self, task: int) -> Layout:
        return Layout(self.key_prefix, task)

    @property
    def tasks(self) -> range:
        return range(self.partitions)

    # ---------------------------------------------------------------- cohorts

    async def cohorts(self, ws: str) -> dict[str, tuple[str, str]]:
        """Every cohort any task holds data of: code → (partner, cohort_id)."""
        pipe = self.redis.pipeline(transaction=False)
        for task in self.tasks:
            pipe.hgetall(self.layout(task).cohorts(ws))
        found: dict[str, tuple[str, str]] = {}
        for registry in await pipe.execute():
            for code, name in registry.items():
                partner, _, cohort_id = name.decode().partition(SEP)
                found[code.decode()] = (partner, cohort_id)
        return found

    async def reports(self, ws: str, codes: list[str]) -> dict[str, dict]:
        """Each cohort's fields, every task's share added up: partner, cohort_id, name, member
        count, updated_at and the sync report's counters."""
        pipe = self.redis.pipeline(transaction=False)
        for code in codes:
            for task in self.tasks:
                pipe.hgetall(self.layout(task).counters(ws, code))
        answers = iter(await pipe.execute())
        reports = {}
        for code in codes:
            totals: Counter = Counter()
            fields: dict[str, str] = {}
            for _ in self.tasks:
                for name, value in next(answers).items():
                    name, text = name.decode(), value.decode()
                    if name in SUMMED or name.startswith("u:"):
                        totals[name] += int(text)
                    elif name == "ua":
                        fields["ua"] = max(fields.get("ua", text), text)
                    else:
                        fields[name] = text
            reports[code] = {**fields, **totals}
        return reports

    async def usage(self, ws: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for task in self.tasks:
            pipe.get(self.layout(task).usage(ws))
        return sum(int(v or 0) for v in await pipe.execute())

    async def usage_by_hour(self, ws: str) -> dict[str, int]:
        """Data points per UTC hour applied ("YYYY-MM-DDTHH"), summed over the tasks."""
        pipe = self.redis.pipeline(transaction=False)
        for task in self.tasks:
            pipe.hgetall(self.layout(task).usage_hours(ws))
        hours: Counter = Counter()
        for share in await pipe.execute():
            for hour, n in share.items():
                hours[hour.decode()] += int(n)
        return dict(hours)

    # ---------------------------------------------------------------- users

    async def find_user(self, ws: str, ref: UserRef, with_cohorts: bool = False) -> FoundUser | None:
        """The current profile a user_ref names (None if none, or if it is gone)."""
        if ref.kind == "user_id":
            user_id = ref.value
        else:
            field = ref_field(ref)
            pipe = self.redis.pipeline(transaction=False)
            for task in self.tasks:
                pipe.hget(self.layout(task).index(ws, field), field)
            user_id = next((v.decode() for v in await pipe.execute() if v), None)
            if user_id is None:
                return None
        task = partition_for(user_id.encode(), self.partitions)
        layout = self.layout(task)
        raw = await self.redis.hget(layout.numbers(ws, user_id), user_id)
        n, gone = decode_entry(raw) if raw is not None else (None, None)
        if gone is not None or n is None:
            return None
        cohorts: list[tuple[str, str]] = []
        if with_cohorts:
            raw = await self.redis.hget(layout.reverse(ws, n), n)
            codes = (await self.redis.smembers(layout.reverse_set(ws, n)) if raw == b"*"
                     else (raw or b"").split())
            registry = await self.redis.hmget(layout.cohorts(ws), [c.decode() for c in codes]) if codes else []
            cohorts = [tuple(v.decode().split(SEP, 1)) for v in registry if v]
        return FoundUser(user_id, task, n, cohorts)

    # ---------------------------------------------------------------- set algebra, task by task

    def _plan(self, ws: str, plan: list, task: int) -> bytes:
        """The plan's sources as this task's key prefixes."""
        layout = self.layout(task)

        def source(item: list) -> list:
            if item[0] == "cohort":
                return ["key", layout.members_prefix(ws, item[1])]
            if item[0] == "all":
                return ["key", layout.everyone_prefix(ws)]
            return item

        return orjson.dumps([[op, [source(s) for s in sources]] for op, sources in plan])

    async def _last_bucket(self, ws: str, task: int) -> int:
        return bucket(int(await self.redis.get(self.layout(task).seq(ws)) or 0))

    async def _evaluate(self, ws: str, task: int, mode: str, plan: list, at: int, limit: int, budget: int) -> list:
        layout = self.layout(task)
        args = [mode, self._plan(ws, plan, task), layout.scratch(uuid.uuid4().hex), at, limit, budget,
                await self._last_bucket(ws, task), layout.records_prefix(ws), WIDTH, HASH_WIDTH]
        return await EVALUATE(self.redis, [layout.seq(ws)], args)

    async def page(self, ws: str, plan: list, after: int, limit: int) -> tuple[list[Member], bool]:
        """Up to `limit` members after place `after`, and whether the listing is finished."""
        members: list[Member] = []
        task, number = divmod(after, TASK_SPAN)
        while task < self.partitions:
            wanted = limit + 1 - len(members)  # one more than asked: is there a next page?
            raw = await self._evaluate(ws, task, "page", plan, number, wanted, self.buckets_per_call)
            done, number = int(raw[0]), int(raw[1])
            for i in range(2, len(raw), 2):
                user_id, external_id, _ = decode_record(raw[i + 1])
                members.append(Member(task * TASK_SPAN + int(raw[i]), user_id, external_id))
            if len(members) > limit:
                return members[:limit], False
            if done:
                task, number = task + 1, 0
        return members, True

    async def size(self, ws: str, plan: list) -> int:
        total = 0
        for task in self.tasks:
            first = 0
            while first >= 0:
                raw = await self._evaluate(ws, task, "size", plan, first, 0, self.buckets_per_call)
                total, first = total + int(raw[0]), int(raw[1])
        return total

    async def contains(self, ws: str, plan: list, user: FoundUser) -> bool:
        return await self._evaluate(ws, user.task, "contains", plan, user.number, 0, 1) == 1

    # ---------------------------------------------------------------- segment definitions

    async def save_segment(self, ws: str, segment_id: str, definition: dict) -> None:
        await self.redis.hset(segments_key(self.key_prefix, ws), segment_id, orjson.dumps(definition))

    async def segment(self, ws: str, segment_id: str) -> dict | None:
        raw = await self.redis.hget(segments_key(self.key_prefix, ws), segment_id)
        return orjson.loads(raw) if raw else None

    async def all_segments(self, ws: str) -> dict[str, dict]:
        raw = await self.redis.hgetall(segments_key(self.key_prefix, ws))
        return {sid.decode(): orjson.loads(value) for sid, value in raw.items()}


__all__ = ["WIDTH", "FoundUser", "Member", "Store"]
