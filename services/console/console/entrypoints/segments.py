"""The segment builder with its live size, saved segments, their members and the
"does this user belong" check."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from ..adapters.operator_api import NotAvailable, Refused, Workspace
from ..domain.segment_filters import (
    COMBINES,
    MODES,
    BuilderError,
    Row,
    build_filter,
    cohort_choice,
    cohorts_key,
    describe,
    parse_rows,
)
from .web import go, guard, is_htmx, render, workspace

router = APIRouter(prefix="/w/{ws}", dependencies=[Depends(guard)])


@router.get("/segments")
async def segments(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """Saved segments."""
    return render(request, "segments.html", segments=await w.segments())


async def _builder(request: Request, w: Workspace, name: str, combine: str, rows: list[Row], blank_rows: int,
                   status_code: int = 200, problem: str | None = None) -> Response:
    cohorts = await w.cohorts()
    names = {(c["partner"], c["cohort_id"]): c["name"] for c in cohorts}
    size, size_problem, segment_filter = None, None, None
    try:
        segment_filter = build_filter(rows, combine)
        if segment_filter is not None:
            size = (await w.preview_segment(segment_filter))["size"]
    except (BuilderError, Refused) as error:
        size_problem = str(error) if isinstance(error, BuilderError) else error.message
    except NotAvailable:
        size_problem = "live size not available from this segment-store"
    template = "_builder.html" if is_htmx(request) else "segment_new.html"
    status_code = 200 if is_htmx(request) else status_code  # htmx swaps only 2xx answers
    return render(request, template, status_code, name=name, combine=combine, rows=rows, blank_rows=blank_rows,
                  cohorts=cohorts, modes=MODES, combines=COMBINES, size=size, size_problem=size_problem,
                  problem=problem, reading=describe(rows, combine, names), segment_filter=segment_filter,
                  choice=cohort_choice, cohorts_key=cohorts_key)


@router.get("/segments/new")
async def new_segment(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """An empty builder."""
    return await _builder(request, w, "", "all", [], 1)


@router.post("/segments/builder")
async def builder(request: Request, name: str = Form(""), combine: str = Form("all"), action: str = Form(""),
                  w: Workspace = Depends(workspace)) -> Response:
    """The builder after a change: rows added or removed, the size again, or saved."""
    form = await request.form()
    modes, choices = [str(m) for m in form.getlist("mode")], [str(c) for c in form.getlist("cohort")]
    if action.startswith("remove:") and action[7:].isdigit() and int(action[7:]) < len(modes):
        del modes[int(action[7:])], choices[int(action[7:])]
    try:
        rows = parse_rows(modes, choices)
    except BuilderError as error:
        return await _builder(request, w, name, combine, [], 1, 400, problem=str(error))
    blank = 1 if action == "add" or not rows else 0
    if action != "save":
        return await _builder(request, w, name, combine, rows, blank)
    try:
        segment_filter = build_filter(rows, combine)
        if segment_filter is None:
            raise BuilderError("add at least one row before saving")
        saved = await w.create_segment(name, segment_filter)
    except (BuilderError, Refused) as error:
        return await _builder(request, w, name, combine, rows, blank, 400,
                              problem=str(error) if isinstance(error, BuilderError) else error.message)
    return go(request, f"/w/{w.ws}/segments/{saved['segment_id']}")


@router.get("/segments/{segment_id}")
async def segment(request: Request, segment_id: str, cursor: str | None = None, limit: int = Query(50, ge=1, le=1000),
                  w: Workspace = Depends(workspace)) -> Response:
    """A saved segment: its filter, size and a page of members."""
    try:
        found = await w.segment(segment_id)
    except Refused as error:
        return render(request, "error.html", error.status or 400, message=error.message)
    members = await w.segment_members(segment_id, cursor, limit)
    return render(request, "segment.html", segment=found, members=members, cursor=cursor, limit=limit)


@router.post("/segments/{segment_id}/contains")
async def contains(request: Request, segment_id: str, user_ref: str = Form(""),
                   w: Workspace = Depends(workspace)) -> Response:
    """Whether a user belongs to the segment right now."""
    try:
        answer, problem = await w.segment_contains(segment_id, user_ref.strip()), None
    except Refused as error:
        answer, problem = None, error.message
    return render(request, "_contains.html", segment_id=segment_id, user_ref=user_ref, contains=answer,
                  problem=problem)
