"""User lookup by user_ref: what identity-resolution knows of the profile, and its cohorts."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from ..adapters.operator_api import Refused, Workspace
from .web import go, guard, render, workspace

router = APIRouter(prefix="/w/{ws}", dependencies=[Depends(guard)])


@router.get("/users")
async def lookup_form(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """The lookup form."""
    return render(request, "user.html", ref=None)


@router.post("/users")
async def lookup(request: Request, user_ref: str = Form(""), w: Workspace = Depends(workspace)) -> Response:
    """Show the user a user_ref names."""
    if not user_ref.strip():
        return render(request, "user.html", 400, ref=None, problem="Enter a user_ref.")
    return go(request, f"/w/{w.ws}/users/{quote(user_ref.strip(), safe=':')}")


@router.get("/users/{user_ref:path}")
async def user(request: Request, user_ref: str, w: Workspace = Depends(workspace)) -> Response:
    """One user: identifiers, aliases, devices and cohorts."""
    try:
        identity = await w.identity(user_ref)
    except Refused as error:
        return render(request, "user.html", error.status or 400, ref=user_ref, problem=error.message)
    try:
        cohorts = (await w.user_cohorts(user_ref))["cohorts"]
    except Refused:
        cohorts = []  # known to identity-resolution, not (yet) to segment-store: in no cohort
    return render(request, "user.html", ref=user_ref, identity=identity, cohorts=cohorts)
