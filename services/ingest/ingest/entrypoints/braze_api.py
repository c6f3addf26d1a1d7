"""The Braze REST API (docs/braze-rest.md) on ingest's base URL: `Authorization: Bearer <REST API key>`,
the key selecting the workspace; bodies and answers as Braze has them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cohort_shared.openapi import json_body
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..braze_service_layer import BrazeRestService
from ..domain.braze_export import ExportBody
from ..domain.braze_requests import (
    BrazeRequest,
    parse_alias_new,
    parse_delete,
    parse_identify,
    parse_merge,
    parse_track,
)
from .braze_bodies import BrazeAliasNewBody, BrazeDeleteBody, BrazeIdentifyBody, BrazeMergeBody, BrazeTrackBody
from .request_body import read_json_object
from .responses import BrazeSuccess, ExportSuccess, braze_errors

router = APIRouter(tags=["Braze REST API"])
REFUSALS = braze_errors(400, 401, 403, 413, 429, 503)
BRAZE_BODIES: list[type[BaseModel]] = [BrazeTrackBody, BrazeAliasNewBody, BrazeIdentifyBody, BrazeMergeBody,
                                       BrazeDeleteBody, ExportBody]


def _braze(request: Request) -> BrazeRestService:
    return request.app.state.braze


def _identity_route(path: str, parse: Callable[[dict[str, Any]], BrazeRequest], model: type[BaseModel]) -> None:
    async def braze_identity_request(request: Request) -> JSONResponse:
        braze = _braze(request)
        call = await braze.authorize(request.headers.get("authorization"), path)
        with call.answering():
            body = await read_json_object(request, braze.ingest.settings.max_body_bytes)
            answer = await braze.apply(call, parse(body))
        return JSONResponse(answer, status_code=201, headers=call.quota.headers())

    braze_identity_request.__doc__ = (model.__doc__ or "").strip()
    router.add_api_route(path, braze_identity_request, methods=["POST"], status_code=201, response_model=BrazeSuccess,
                         responses=REFUSALS, openapi_extra=json_body(model), name=f"braze_{path.strip('/').replace('/', '_')}")


for _path, _parse, _model in (("/users/track", parse_track, BrazeTrackBody),
                              ("/users/alias/new", parse_alias_new, BrazeAliasNewBody),
                              ("/users/identify", parse_identify, BrazeIdentifyBody),
                              ("/users/merge", parse_merge, BrazeMergeBody),
                              ("/users/delete", parse_delete, BrazeDeleteBody)):
    _identity_route(_path, _parse, _model)


@router.post("/users/export/ids", status_code=201, response_model=ExportSuccess, responses=REFUSALS,
             openapi_extra=json_body(ExportBody))
async def export_users_by_identifier(request: Request) -> JSONResponse:
    """Users by external_ids, user_aliases, device_id, braze_id, email_address or phone, with their cohorts."""
    braze = _braze(request)
    call = await braze.authorize(request.headers.get("authorization"), "/users/export/ids")
    with call.answering():
        answer = await braze.export(call, await read_json_object(request, braze.ingest.settings.max_body_bytes))
    return JSONResponse(answer, status_code=201, headers=call.quota.headers())
