"""Signing in with the admin token and out again, and choosing the workspace."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from ..domain.sessions import CSRF_FIELD, SESSION_COOKIE, SIGNIN_COOKIE
from .web import _WORKSPACE, console, go, guard, render

public = APIRouter()
signed_in = APIRouter(dependencies=[Depends(guard)])
SIGNIN_COOKIE_SECONDS = 30 * 60


def _signin_page(request: Request, status_code: int = 200, failed: bool = False) -> Response:
    nonce = secrets.token_urlsafe(18)
    response = render(request, "signin.html", status_code, failed=failed,
                      signin_csrf=console(request).signer.signin_token(nonce))
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=SIGNIN_COOKIE_SECONDS, httponly=True, samesite="strict",
                        secure=console(request).settings.secure_cookie, path="/signin")
    return response


@public.get("/signin")
async def signin_form(request: Request) -> Response:
    """The sign-in page."""
    return _signin_page(request)


@public.post("/signin")
async def signin(request: Request, token: str = Form(""), csrf_token: str = Form("", alias=CSRF_FIELD)) -> Response:
    """A session for the right admin token; one and the same refusal for anything else."""
    c = console(request)
    if not (c.signer.signin_ok(request.cookies.get(SIGNIN_COOKIE), csrf_token) and c.signer.token_matches(token)):
        return _signin_page(request, 401, failed=True)
    response = RedirectResponse(f"/w/{c.settings.default_workspace}/partners", status_code=303)
    response.set_cookie(SESSION_COOKIE, c.signer.issue(secrets.token_urlsafe(18), c.clock()),
                        max_age=int(c.settings.session_hours * 3600), httponly=True, samesite="strict",
                        secure=c.settings.secure_cookie, path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@signed_in.post("/signout")
async def signout(request: Request) -> Response:
    """End the session in this browser."""
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@signed_in.get("/")
async def home(request: Request) -> Response:
    """The default workspace's partners."""
    return RedirectResponse(f"/w/{console(request).settings.default_workspace}/partners", status_code=303)


@signed_in.post("/workspace")
async def choose_workspace(request: Request, ws: str = Form(...)) -> Response:
    """Switch to another workspace (names as the services accept them)."""
    if not _WORKSPACE.fullmatch(ws):
        return render(request, "error.html", 400, ws=None,
                      message="A workspace name is 1 to 64 characters of A-Z, a-z, 0-9, _ and -.")
    return go(request, f"/w/{ws}/partners")
