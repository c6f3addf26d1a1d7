"""Cohorts per partner with their counts, a cohort's sync report and its members."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..adapters.operator_api import Refused, Workspace
from ..domain.segment_filters import cohorts_key
from .web import guard, render, workspace

router = APIRouter(prefix="/w/{ws}", dependencies=[Depends(guard)])
PAGE = Query(50, ge=1, le=1000)


def _by_partner(cohorts: list[dict], partner: str | None) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for cohort in cohorts:
        if partner is None or cohort["partner"] == partner:
            grouped.setdefault(cohort["partner"], []).append(cohort)
    return grouped


@router.get("/cohorts")
async def cohorts(request: Request, partner: str | None = None, w: Workspace = Depends(workspace)) -> Response:
    """Every cohort of the workspace, by partner; the counts refresh while the page is open."""
    return render(request, "cohorts.html", grouped=_by_partner(await w.cohorts(), partner), partner=partner,
                  cohorts_key=cohorts_key)


@router.get("/cohort-rows")
async def cohort_rows(request: Request, partner: str | None = None, w: Workspace = Depends(workspace)) -> Response:
    """The cohorts table alone, as the cohorts page polls it."""
    return render(request, "_cohort_tables.html", grouped=_by_partner(await w.cohorts(), partner), partner=partner,
                  cohorts_key=cohorts_key)


@router.get("/cohort-report/{partner}/{cohort_id:path}")
async def cohort_report(request: Request, partner: str, cohort_id: str, w: Workspace = Depends(workspace)) -> Response:
    """A cohort's counts and sync report alone, as its page polls them."""
    return render(request, "_cohort_report.html", cohort=await w.cohort(partner, cohort_id))


@router.get("/cohorts/{partner}/{cohort_id:path}")
async def cohort(request: Request, partner: str, cohort_id: str, cursor: str | None = None, limit: int = PAGE,
                 w: Workspace = Depends(workspace)) -> Response:
    """One cohort: its counts, sync report and a page of members."""
    try:
        found = await w.cohort(partner, cohort_id)
    except Refused as error:
        return render(request, "error.html", error.status or 400, message=error.message)
    members = await w.cohort_members(partner, cohort_id, cursor, limit)
    return render(request, "cohort.html", cohort=found, members=members, cursor=cursor, limit=limit,
                  cohorts_key=cohorts_key)
