"""The operator API of docs/segments.md: handlers only parse, call the service layer and reply."""

from __future__ import annotations

import re

import orjson
from cohort_shared.openapi import json_body, refusals
from cohort_shared.schemas import WORKSPACE_PATTERN
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..domain.errors import Invalid
from ..service_layer import MAX_HISTORY_HOURS, SegmentStoreService

router = APIRouter(prefix="/workspaces/{ws}")


def service(request: Request, ws: str) -> SegmentStoreService:
    """The service, once the workspace name is known to be one (docs/overview.md)."""
    if not re.fullmatch(WORKSPACE_PATTERN, ws):
        raise Invalid("workspace must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
    return request.app.state.segments


@router.get("/cohorts")
async def list_cohorts(request: Request, ws: str, cursor: str | None = None, limit: int | None = Query(None)) -> dict:
    """A page of the workspace's cohorts, named or changed, with their member counts."""
    return await service(request, ws).list_cohorts(ws, cursor, limit)


@router.get("/cohorts/{cohort_id}", responses=refusals(404, 409))
async def get_cohort(request: Request, ws: str, cohort_id: str, partner: str | None = None) -> dict:
    """One cohort with its sync report; 409 if its cohort_id is used by several partners."""
    return await service(request, ws).cohort(ws, cohort_id, partner)


@router.get("/cohorts/{cohort_id}/members", responses=refusals(404, 409))
async def cohort_members(request: Request, ws: str, cohort_id: str, partner: str | None = None,
                         cursor: str | None = None, limit: int | None = Query(None)) -> dict:
    """A page of the cohort's members, in a stable order, with the cursor of the next page."""
    return await service(request, ws).cohort_members(ws, cohort_id, partner, cursor, limit)


@router.get("/users/{user_ref:path}/cohorts", responses=refusals(404))
async def user_cohorts(request: Request, ws: str, user_ref: str) -> dict:
    """The cohorts a user (by internal ID, external_id:, alias:<label>:<name> or device_id:) is in."""
    return await service(request, ws).user_cohorts(ws, user_ref)


@router.get("/usage")
async def usage(request: Request, ws: str) -> dict:
    """Data points: effective cohort-import changes of the workspace (merges and deletes are free)."""
    return await service(request, ws).usage(ws)


@router.get("/usage/history")
async def usage_history(request: Request, ws: str,
                        hours: int | None = Query(None, ge=1, le=MAX_HISTORY_HOURS)) -> dict:
    """Data points per UTC hour applied, the latest `hours` hours that had any (default 168)."""
    return await service(request, ws).usage_history(ws, hours)


@router.post("/segments/preview", openapi_extra=json_body("SegmentPreview"))
async def preview_segment(request: Request, ws: str) -> dict:
    """The size of a filter right now, without saving a segment (the console's live size)."""
    segments = service(request, ws)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid("the body must be valid JSON") from None
    return await segments.preview_segment(ws, body)


@router.post("/segments", status_code=201, openapi_extra=json_body("SegmentDefinition"))
async def create_segment(request: Request, ws: str) -> JSONResponse:
    """Validate and store a segment definition; 400 names what is wrong with the filter."""
    segments = service(request, ws)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise Invalid("the body must be valid JSON") from None
    return JSONResponse(await segments.create_segment(ws, body), status_code=201)


@router.get("/segments")
async def list_segments(request: Request, ws: str, cursor: str | None = None, limit: int | None = Query(None)) -> dict:
    """A page of the workspace's segments (without their sizes)."""
    return await service(request, ws).list_segments(ws, cursor, limit)


@router.get("/segments/{segment_id}", responses=refusals(404))
async def get_segment(request: Request, ws: str, segment_id: str) -> dict:
    """The segment's definition and its current size."""
    return await service(request, ws).segment(ws, segment_id)


@router.get("/segments/{segment_id}/members", responses=refusals(404))
async def segment_members(request: Request, ws: str, segment_id: str, cursor: str | None = None,
                          limit: int | None = Query(None)) -> dict:
    """A page of the segment's members, paginated like a cohort's."""
    return await service(request, ws).segment_members(ws, segment_id, cursor, limit)


@router.get("/segments/{segment_id}/contains/{user_ref:path}", responses=refusals(404))
async def segment_contains(request: Request, ws: str, segment_id: str, user_ref: str) -> dict:
    """Whether one user is in the segment right now."""
    return await service(request, ws).segment_contains(ws, segment_id, user_ref)
