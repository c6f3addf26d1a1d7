"""Reads of segment-store's Redis state (layout.py), for the operator API. Nothing here writes
memberships: only the change stream does, through its tracked scripts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from ..domain.user_refs import UserRef
from .layout import workspace_base
from .scripts import Scripts

SEP = "\x1f"


@dataclass(frozen=True)
class Member:
    number: int
    user_id: str
    external_id: str | None


@dataclass(frozen=True)
class FoundUser:
    user_id: str
    number: int
    cohorts: list[tuple[str, str, str]]
    """(partner, cohort_id, name) of each cohort the user is in"""


def parse_record(number: int, raw: bytes) -> Member:
    """A user record: "0|1" + user_id [+ \\x1f + external_id] (layout.py)."""
    text = raw.decode()[1:]
    user_id, sep, external_id = text.partition(SEP)
    return Member(number, user_id, external_id if sep else None)


class Store:
    """Redis reads for one service instance; every method is scoped to one workspace."""

    def __init__(self, client: aioredis.Redis, scripts: Scripts, key_prefix: str, buckets_per_call: int) -> None:
        self.redis = client
        self.scripts = scripts
        self.key_prefix = key_prefix
        self.buckets_per_call = buckets_per_call

    def key(self, ws: str, *parts: str | int) -> str:
        return ":".join((workspace_base(self.key_prefix, ws), *map(str, parts)))

    async def cohort_numbers(self, ws: str, cohort_id: str) -> list[int]:
        """Every cohort (of any partner) with this cohort_id."""
        raw = await self.redis.hget(self.key(ws, "byid"), cohort_id)
        return [int(k) for k in raw.split()] if raw else []

    async def cohort_number(self, ws: str, partner: str, cohort_id: str) -> int | None:
        raw = await self.redis.hget(self.key(ws, "c"), f"{partner}{SEP}{cohort_id}")
        return int(raw) if raw else None

    async def cohort_numbers_of(self, ws: str, cohorts: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        if not cohorts:
            return {}
        raw = await self.redis.hmget(self.key(ws, "c"), [f"{p}{SEP}{c}" for p, c in cohorts])
        return {cohort: int(k) for cohort, k in zip(cohorts, raw, strict=True) if k is not None}

    async def cohort_fields(self, ws: str, numbers: list[int]) -> list[dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for k in numbers:
            pipe.hgetall(self.key(ws, "cm", k))
        return [{f.decode(): v.decode() for f, v in raw.items()} for raw in await pipe.execute()]

    async def cohorts_by_name(self, ws: str) -> list[tuple[str, int]]:
        """Every cohort as (partner \\x1f cohort_id, its number)."""
        return [(name.decode(), int(k)) for name, k in (await self.redis.hgetall(self.key(ws, "c"))).items()]

    async def usage(self, ws: str) -> int:
        return int(await self.redis.get(self.key(ws, "usage")) or 0)

    async def find_user(self, ws: str, ref: UserRef, with_cohorts: bool = False) -> FoundUser | None:
        kind, value = ("user_id", ref.value) if ref.kind == "user_id" else ("index", ref.index_key())
        raw = await self.scripts.find_user(keys=[self.key(ws)], args=[kind, value, "1" if with_cohorts else "0"])
        if not raw:
            return None
        triples = [tuple(x.decode() for x in raw[i:i + 3]) for i in range(2, len(raw), 3)]
        return FoundUser(raw[0].decode(), int(raw[1]), triples)

    async def page(self, ws: str, plan: list, after: int, limit: int) -> tuple[list[Member], bool]:
        """Up to `limit` members after number `after`, and whether the listing is finished."""
        members: list[Member] = []
        encoded = orjson.dumps(plan)
        while True:
            wanted = limit + 1 - len(members)  # one more than asked: is there a next page?
            raw = await self.scripts.evaluate(
                keys=[self.key(ws)], args=["page", encoded, uuid.uuid4().hex, after, wanted, self.buckets_per_call]
            )
            done, after = int(raw[0]), int(raw[1])
            members += [parse_record(int(raw[i]), raw[i + 1]) for i in range(2, len(raw), 2)]
            if len(members) > limit:
                return members[:limit], False
            if done:
                return members, True

    async def size(self, ws: str, plan: list) -> int:
        total, bucket, encoded = 0, 0, orjson.dumps(plan)
        while bucket >= 0:
            raw = await self.scripts.evaluate(
                keys=[self.key(ws)], args=["size", encoded, uuid.uuid4().hex, bucket, 0, self.buckets_per_call]
            )
            total, bucket = total + int(raw[0]), int(raw[1])
        return total

    async def contains(self, ws: str, plan: list, number: int) -> bool:
        raw = await self.scripts.evaluate(
            keys=[self.key(ws)], args=["contains", orjson.dumps(plan), uuid.uuid4().hex, number, 0, 1]
        )
        return raw == 1

    async def save_segment(self, ws: str, segment_id: str, definition: dict) -> None:
        await self.redis.hset(self.key(ws, "seg"), segment_id, orjson.dumps(definition))

    async def all_segments(self, ws: str) -> dict[str, dict]:
        return {sid.decode(): orjson.loads(raw) for sid, raw in (await self.redis.hgetall(self.key(ws, "seg"))).items()}

    async def segment(self, ws: str, segment_id: str) -> dict | None:
        raw = await self.redis.hget(self.key(ws, "seg"), segment_id)
        return orjson.loads(raw) if raw else None
