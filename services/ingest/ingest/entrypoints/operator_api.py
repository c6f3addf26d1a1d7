"""The operator API of ingest (SPEC §2), behind `Authorization: Bearer $ADMIN_TOKEN`:
data import keys and the profile identity API."""

from __future__ import annotations

from cohort_shared.openapi import json_body
from fastapi import APIRouter, Query, Request, Response

from ..domain.identity_requests import IDENTITY_BODIES, IdentityBody
from ..domain.rest_api_keys import RestApiKeyBody
from ..domain.workspace_keys import REST_API_KEYS
from ..service_layer import IngestService
from .request_body import read_json_object
from .responses import (
    CreatedKey,
    CreatedRestKey,
    IdentitySuccess,
    KeyList,
    ListedKey,
    ListedRestKey,
    RestKeyList,
    errors,
)

keys_router = APIRouter(tags=["data import keys"])
rest_keys_router = APIRouter(tags=["REST API keys"])
identity_router = APIRouter(tags=["profile identity API"])


def _service(request: Request) -> IngestService:
    return request.app.state.ingest


@keys_router.post("/workspaces/{ws}/data-import-keys", status_code=201, response_model=CreatedKey,
                  responses=errors(400, 401, 503))
async def create_data_import_key(ws: str, request: Request) -> CreatedKey:
    """Create a data import key; the only response that ever shows it in clear."""
    service = _service(request)
    issued = await service.create_key(ws)
    return CreatedKey(key_id=issued.key_id, data_import_key=issued.secret,
                      rest_endpoint=service.settings.rest_endpoint)


@keys_router.get("/workspaces/{ws}/data-import-keys", response_model=KeyList, responses=errors(400, 401, 503))
async def list_data_import_keys(ws: str, request: Request, cursor: str | None = None,
                                limit: int | None = Query(None, ge=1, le=1000)) -> KeyList:
    """A page of the workspace's keys, masked, oldest first."""
    records, next_cursor = await _service(request).list_keys(ws, cursor, limit)
    return KeyList(keys=[ListedKey(key_id=r.key_id, masked=r.masked, created_at=r.created_at,
                                   last_used_at=r.last_used_at) for r in records], next_cursor=next_cursor)


@keys_router.delete("/workspaces/{ws}/data-import-keys/{key_id}", status_code=204,
                    responses=errors(400, 401, 404, 503))
async def delete_data_import_key(ws: str, key_id: str, request: Request) -> Response:
    """Invalidate a key: the next request with it is refused."""
    await _service(request).delete_key(ws, key_id)
    return Response(status_code=204)


@rest_keys_router.post("/workspaces/{ws}/rest-api-keys", status_code=201, response_model=CreatedRestKey,
                       responses=errors(400, 401, 413, 503), openapi_extra=json_body(RestApiKeyBody))
async def create_rest_api_key(ws: str, request: Request) -> CreatedRestKey:
    """Create a REST API key for the Braze REST API; the only response that ever shows it in clear."""
    service = _service(request)
    issued = await service.create_rest_key(ws, await read_json_object(request, service.settings.max_body_bytes))
    return CreatedRestKey(key_id=issued.key_id, rest_api_key=issued.secret, name=issued.record.name or "",
                          permissions=list(issued.record.permissions), rest_endpoint=service.settings.rest_endpoint)


@rest_keys_router.get("/workspaces/{ws}/rest-api-keys", response_model=RestKeyList, responses=errors(400, 401, 503))
async def list_rest_api_keys(ws: str, request: Request, cursor: str | None = None,
                             limit: int | None = Query(None, ge=1, le=1000)) -> RestKeyList:
    """A page of the workspace's REST API keys, masked, oldest first, with when each was last used."""
    records, next_cursor = await _service(request).list_keys(ws, cursor, limit, REST_API_KEYS)
    return RestKeyList(keys=[ListedRestKey(key_id=r.key_id, name=r.name or "", masked=r.masked,
                                           permissions=list(r.permissions), created_at=r.created_at,
                                           last_used_at=r.last_used_at) for r in records], next_cursor=next_cursor)


@rest_keys_router.delete("/workspaces/{ws}/rest-api-keys/{key_id}", status_code=204,
                         responses=errors(400, 401, 404, 503))
async def delete_rest_api_key(ws: str, key_id: str, request: Request) -> Response:
    """Invalidate a REST API key: the next request with it is refused."""
    await _service(request).delete_key(ws, key_id, REST_API_KEYS)
    return Response(status_code=204)


def _identity_route(path: str, model: type[IdentityBody], summary: str) -> None:
    async def request_identity_change(ws: str, request: Request) -> IdentitySuccess:
        service = _service(request)
        body = await read_json_object(request, service.settings.max_body_bytes)
        accepted, request_id = await service.request_identity_change(ws, model, body)
        return IdentitySuccess(accepted=accepted, request_id=request_id)

    request_identity_change.__doc__ = summary
    identity_router.add_api_route(
        f"/workspaces/{{ws}}/users/{path}", request_identity_change, methods=["POST"], status_code=202,
        response_model=IdentitySuccess, responses=errors(400, 401, 413, 503), openapi_extra=json_body(model),
        name=f"users_{path.replace('/', '_')}", summary=summary,
    )


for _path, _model in IDENTITY_BODIES.items():
    _identity_route(_path, _model, (_model.__doc__ or "").strip())
