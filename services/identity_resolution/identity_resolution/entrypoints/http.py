"""The operator API of SPEC §3: what the service currently knows of one profile."""

from __future__ import annotations

import re

from cohort_shared.ops import add_shared_error_handlers
from cohort_shared.schemas import WORKSPACE_PATTERN
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..domain.identifiers import alias_from_key, parse_user_ref, sort_key

router = APIRouter()
_WORKSPACE = re.compile(WORKSPACE_PATTERN)


@router.get("/workspaces/{workspace_id}/identities/{user_ref:path}")
async def get_identity(workspace_id: str, user_ref: str, request: Request) -> JSONResponse:
    """One profile by internal ID, `external_id:…`, `alias:<label>:<name>` or `device_id:…`."""
    if not _WORKSPACE.match(workspace_id):
        return _error(400, "workspace must match [A-Za-z0-9_-]{1,64}")
    try:
        ref = parse_user_ref(user_ref)
    except ValueError as exc:
        return _error(400, str(exc))
    profile = await request.app.state.profiles.find(workspace_id, ref)
    if profile is None:
        return _error(404, "user_ref names no profile in this workspace")
    return JSONResponse({
        "user_id": profile.user_id,
        "external_id": profile.external_id,
        "identified": profile.identified,
        "aliases": [
            {"alias_name": a.alias_name, "alias_label": a.alias_label}
            for a in (alias_from_key(k) for k in sorted(profile.aliases, key=sort_key))
        ],
        "device_ids": sorted(profile.devices, key=sort_key),
        "custom_attributes": dict(sorted(profile.attributes.items())),
    })


_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


@router.get("/workspaces/{workspace_id}/identity-requests/{request_id}")
async def get_identity_request(workspace_id: str, request_id: str, request: Request) -> JSONResponse:
    """What became of one profile identity request (its `request_id` came with the 202):
    how many entries it had and which were skipped, and why."""
    if not _WORKSPACE.match(workspace_id):
        return _error(400, "workspace must match [A-Za-z0-9_-]{1,64}")
    if not _REQUEST_ID.match(request_id):
        return _error(400, "request_id must be the 32 hexadecimal characters ingest answered with")
    report = await request.app.state.store.report(workspace_id, request_id)
    if report is None:
        return _error(404, "no report for this request_id: not applied yet (retry in a moment), "
                           "older than 7 days, or never accepted in this workspace")
    return JSONResponse(report)


@router.get("/workspaces/{workspace_id}/identity-report")
async def get_identity_report(workspace_id: str, request: Request) -> JSONResponse:
    """Profile identity entries skipped in this workspace, ever, by reason."""
    if not _WORKSPACE.match(workspace_id):
        return _error(400, "workspace must match [A-Za-z0-9_-]{1,64}")
    return JSONResponse({"skipped_by_reason": await request.app.state.store.skipped(workspace_id)})


def add_error_handlers(app: FastAPI) -> None:
    """Every error body is `{"message": "…"}` (the operator-token check included)."""
    add_shared_error_handlers(app, "the identity store")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's and Starlette's own (an unknown route, a method not allowed) alike."""
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, f"{where}: {first.get('msg', 'invalid request')}")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)
