"""What the operator API does (docs/segments.md): cohorts, members, a user's cohorts, segments, usage.
Parsing and rules come from domain/, reads from adapters/store.py."""

from __future__ import annotations

import uuid

from cohort_shared.paging import page

from .adapters.layout import SEP, cohort_code
from .adapters.store import Member, Store
from .domain.cursor import check_limit, decode_cursor, encode_cursor
from .domain.errors import Ambiguous, Invalid, NotFound
from .domain.filters import cohorts_named, parse_filter, parse_segment_name
from .domain.planning import plan_filter
from .domain.user_refs import parse_user_ref

MAX_HISTORY_HOURS = 24 * 400


def cohort_summary(fields: dict) -> dict:
    return {
        "partner": fields["p"], "cohort_id": fields["c"], "name": fields.get("nm", fields["c"]),
        "member_count": int(fields.get("mc", 0)), "updated_at": fields.get("ua"),
    }


def sync_report(fields: dict) -> dict:
    unmatched = {f[2:]: int(v) for f, v in sorted(fields.items()) if f.startswith("u:") and int(v)}
    return {
        "received": int(fields.get("rc", 0)), "applied": int(fields.get("ap", 0)),
        "already_in_state": int(fields.get("al", 0)), "unmatched": unmatched,
        "dropped": {"pre_2010": int(fields.get("pd", 0))},
    }


def members_page(members: list[Member], done: bool, listing: str) -> dict:
    return {
        "members": [{"user_id": m.user_id, "external_id": m.external_id} for m in members],
        "next_cursor": None if done or not members else encode_cursor(listing, members[-1].place),
    }


class SegmentStoreService:
    """The operator API's operations, each scoped to one workspace."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def list_cohorts(self, ws: str, cursor: str | None = None, limit: int | None = None) -> dict:
        """A page of the workspace's cohorts in (partner, cohort_id) order."""
        known = await self.store.cohorts(ws)
        chosen, next_cursor = page(known.items(), lambda item: SEP.join(item[1]), f"cohorts:{ws}", cursor, limit)
        reports = await self.store.reports(ws, [code for code, _ in chosen])
        return {"cohorts": [cohort_summary({"p": p, "c": c, **reports[code]}) for code, (p, c) in chosen],
                "next_cursor": next_cursor}

    async def list_segments(self, ws: str, cursor: str | None = None, limit: int | None = None) -> dict:
        """A page of the workspace's segments in segment_id order."""
        segments = await self.store.all_segments(ws)
        chosen, next_cursor = page(segments.items(), lambda item: item[0], f"segments:{ws}", cursor, limit)
        return {"segments": [{"segment_id": sid, "name": d["name"], "filter": d["filter"]} for sid, d in chosen],
                "next_cursor": next_cursor}

    async def _cohort(self, ws: str, cohort_id: str, partner: str | None) -> tuple[str, tuple[str, str]]:
        found = [(code, name) for code, name in (await self.store.cohorts(ws)).items()
                 if name[1] == cohort_id and (partner is None or name[0] == partner)]
        if not found:
            raise NotFound(f"cohort_id {cohort_id!r}: no such cohort in this workspace")
        if len(found) > 1:
            partners = ", ".join(sorted(name[0] for _, name in found))
            raise Ambiguous(f"cohort_id {cohort_id!r} names cohorts of several partners ({partners}); add ?partner=")
        return found[0]

    async def cohort(self, ws: str, cohort_id: str, partner: str | None) -> dict:
        code, (p, c) = await self._cohort(ws, cohort_id, partner)
        fields = {"p": p, "c": c, **(await self.store.reports(ws, [code]))[code]}
        return {**cohort_summary(fields), "sync_report": sync_report(fields)}

    async def cohort_members(self, ws: str, cohort_id: str, partner: str | None, cursor: str | None,
                             limit: int | None) -> dict:
        limit = check_limit(limit)
        code, _ = await self._cohort(ws, cohort_id, partner)
        listing = f"cohort:{ws}:{code}"
        after = decode_cursor(listing, cursor)
        members, done = await self.store.page(ws, [["union", [["cohort", code]]]], after, limit)
        return members_page(members, done, listing)

    async def user_cohorts(self, ws: str, user_ref: str) -> dict:
        found = await self.store.find_user(ws, parse_user_ref(user_ref), with_cohorts=True)
        if found is None:
            raise NotFound(f"user_ref {user_ref!r}: no such user in this workspace")
        known = await self.store.cohorts(ws)
        reports = await self.store.reports(ws, [cohort_code(p, c) for p, c in found.cohorts])
        cohorts = [{"partner": p, "cohort_id": c, "name": reports[cohort_code(p, c)].get("nm", c)}
                   for p, c in found.cohorts if cohort_code(p, c) in known]
        return {"user_id": found.user_id, "cohorts": sorted(cohorts, key=lambda c: (c["partner"], c["cohort_id"]))}

    async def usage(self, ws: str) -> dict:
        return {"data_points": await self.store.usage(ws)}

    async def usage_history(self, ws: str, hours: int | None) -> dict:
        """The latest `hours` hours with data points, oldest first (hours before this counter
        existed are missing, so their sum can be below `data_points`)."""
        wanted = 168 if hours is None else hours
        if not 1 <= wanted <= MAX_HISTORY_HOURS:
            raise Invalid(f"hours must be between 1 and {MAX_HISTORY_HOURS}")
        by_hour = sorted((await self.store.usage_by_hour(ws)).items())[-wanted:]
        return {"hours": [{"hour": f"{hour}:00:00Z", "data_points": n} for hour, n in by_hour if n]}

    async def preview_segment(self, ws: str, body: object) -> dict:
        """The size a segment with this filter would have now, saving nothing."""
        if not isinstance(body, dict) or "filter" not in body:
            raise Invalid("the body must be a JSON object with a filter")
        node = parse_filter(body["filter"])
        codes = {cohort: cohort_code(*cohort) for cohort in cohorts_named(node)}
        return {"filter": body["filter"], "size": await self.store.size(ws, plan_filter(node, codes).as_json())}

    async def create_segment(self, ws: str, body: object) -> dict:
        if not isinstance(body, dict):
            raise Invalid("the body must be a JSON object with name and filter")
        name = parse_segment_name(body.get("name"))
        if "filter" not in body:
            raise Invalid("filter is required")
        parse_filter(body["filter"])
        segment_id = uuid.uuid4().hex
        await self.store.save_segment(ws, segment_id, {"name": name, "filter": body["filter"]})
        return {"segment_id": segment_id, "name": name, "filter": body["filter"]}

    async def _segment(self, ws: str, segment_id: str) -> tuple[dict, list]:
        definition = await self.store.segment(ws, segment_id)
        if definition is None:
            raise NotFound(f"segment_id {segment_id!r}: no such segment in this workspace")
        node = parse_filter(definition["filter"])
        codes = {cohort: cohort_code(*cohort) for cohort in cohorts_named(node)}
        return definition, plan_filter(node, codes).as_json()

    async def segment(self, ws: str, segment_id: str) -> dict:
        definition, plan = await self._segment(ws, segment_id)
        size = await self.store.size(ws, plan)
        return {"segment_id": segment_id, "name": definition["name"], "filter": definition["filter"], "size": size}

    async def segment_members(self, ws: str, segment_id: str, cursor: str | None, limit: int | None) -> dict:
        limit = check_limit(limit)
        _, plan = await self._segment(ws, segment_id)
        listing = f"segment:{ws}:{segment_id}"
        members, done = await self.store.page(ws, plan, decode_cursor(listing, cursor), limit)
        return members_page(members, done, listing)

    async def segment_contains(self, ws: str, segment_id: str, user_ref: str) -> dict:
        _, plan = await self._segment(ws, segment_id)
        found = await self.store.find_user(ws, parse_user_ref(user_ref))
        if found is None:
            raise NotFound(f"user_ref {user_ref!r}: no such user in this workspace")
        return {"contains": await self.store.contains(ws, plan, found)}
