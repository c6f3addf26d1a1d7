"""Technology partners with the workspace's data import keys, and the REST API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from ..adapters.operator_api import NotAvailable, Refused, Unreachable, Workspace
from ..domain.segment_filters import cohorts_key
from .web import go, guard, render, workspace

router = APIRouter(prefix="/w/{ws}", dependencies=[Depends(guard)])
REST_PERMISSIONS = ["users.track", "users.alias.new", "users.identify", "users.merge", "users.delete",
                    "users.export.ids"]


@router.get("/partners")
async def partners(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """Every configured partner, with its cohort count in this workspace."""
    cohorts = await w.cohorts()
    names = list(dict.fromkeys([*request.app.state.console.settings.partner_names(), *(c["partner"] for c in cohorts)]))
    counts = {p: sum(1 for c in cohorts if c["partner"] == p) for p in names}
    return render(request, "partners.html", listed=names, counts=counts, cohorts_key=cohorts_key)


async def _partner_page(request: Request, w: Workspace, partner: str, status_code: int = 200, **extra) -> Response:
    keys = await w.data_import_keys()
    cohorts = [c for c in await w.cohorts() if c["partner"] == partner]
    return render(request, "partner.html", status_code, partner=partner, keys=keys, cohorts=cohorts,
                  cohorts_key=cohorts_key, **extra)


@router.get("/partners/{partner}")
async def partner(request: Request, partner: str, invalidated: str | None = None,
                  w: Workspace = Depends(workspace)) -> Response:
    """One partner: the data import keys it is given, and its cohorts."""
    return await _partner_page(request, w, partner, invalidated=invalidated)


@router.post("/partners/{partner}/keys")
async def generate_key(request: Request, partner: str, w: Workspace = Depends(workspace)) -> Response:
    """Generate a data import key and show it this once, with the REST endpoint."""
    created = await w.create_data_import_key()
    return await _partner_page(request, w, partner, 201, created=created)


@router.get("/partners/{partner}/keys/{key_id}/invalidate")
async def confirm_invalidate(request: Request, partner: str, key_id: str, w: Workspace = Depends(workspace)) -> Response:
    """Ask before invalidating: producers using the key are refused from then on."""
    key = next((k for k in await w.data_import_keys() if k["key_id"] == key_id), None)
    if key is None:
        return render(request, "error.html", 404, message="No such data import key in this workspace.")
    return render(request, "confirm_invalidate.html", partner=partner, key=key, kind="data import key",
                  action=f"/w/{w.ws}/partners/{partner}/keys/{key_id}/invalidate",
                  back=f"/w/{w.ws}/partners/{partner}")


@router.post("/partners/{partner}/keys/{key_id}/invalidate")
async def invalidate_key(request: Request, partner: str, key_id: str, w: Workspace = Depends(workspace)) -> Response:
    """Invalidate the key; it stops working at once."""
    await w.invalidate_data_import_key(key_id)
    return go(request, f"/w/{w.ws}/partners/{partner}?invalidated={key_id}")


async def _rest_keys_page(request: Request, w: Workspace, status_code: int = 200, **extra) -> Response:
    try:
        keys, unavailable = await w.rest_api_keys(), None
    except (NotAvailable, Unreachable) as error:
        keys, unavailable = [], error.message
    return render(request, "rest_keys.html", status_code, keys=keys, unavailable=unavailable,
                  permissions=REST_PERMISSIONS, **extra)


@router.get("/rest-api-keys")
async def rest_keys(request: Request, invalidated: str | None = None, w: Workspace = Depends(workspace)) -> Response:
    """The workspace's REST API keys, for Braze client libraries (where ingest offers them)."""
    return await _rest_keys_page(request, w, invalidated=invalidated)


@router.post("/rest-api-keys")
async def generate_rest_key(request: Request, name: str = Form(""), w: Workspace = Depends(workspace)) -> Response:
    """Generate a REST API key with the permissions ticked; shown this once."""
    chosen = [p for p in (await request.form()).getlist("permissions") if p in REST_PERMISSIONS]
    try:
        created = await w.create_rest_api_key(name, chosen)
    except Refused as error:
        return await _rest_keys_page(request, w, 400, refused=error.message)
    return await _rest_keys_page(request, w, 201, created=created)


@router.get("/rest-api-keys/{key_id}/invalidate")
async def confirm_invalidate_rest(request: Request, key_id: str, w: Workspace = Depends(workspace)) -> Response:
    """Ask before invalidating a REST API key."""
    key = next((k for k in await w.rest_api_keys() if k["key_id"] == key_id), None)
    if key is None:
        return render(request, "error.html", 404, message="No such REST API key in this workspace.")
    return render(request, "confirm_invalidate.html", key=key, kind="REST API key",
                  action=f"/w/{w.ws}/rest-api-keys/{key_id}/invalidate", back=f"/w/{w.ws}/rest-api-keys")


@router.post("/rest-api-keys/{key_id}/invalidate")
async def invalidate_rest_key(request: Request, key_id: str, w: Workspace = Depends(workspace)) -> Response:
    """Invalidate the REST API key; refused from then on."""
    await w.invalidate_rest_api_key(key_id)
    return go(request, f"/w/{w.ws}/rest-api-keys?invalidated={key_id}")
