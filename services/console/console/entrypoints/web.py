"""What every page shares: the templates, the sign-in guard with its CSRF check, and
rendering with the session's token and the workspace's navigation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cohort_shared.schemas import WORKSPACE_PATTERN
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..adapters.operator_api import Workspace
from ..domain.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Session

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "templates"))
TEMPLATES.env.filters["seg"] = lambda value: quote(str(value), safe="")


def shown_time(value: object) -> str:
    """An ISO-8601 time as `2026-11-29 22:33:50 UTC`; anything else as it is."""
    if not isinstance(value, str):
        return "—" if value is None else str(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


TEMPLATES.env.filters["when"] = shown_time
_WORKSPACE = re.compile(WORKSPACE_PATTERN)
SAFE_METHODS = {"GET", "HEAD"}


class NotSignedIn(Exception):
    """No valid session: pages send the browser to sign in, anything else gets a 401."""


class CsrfRefused(Exception):
    """A state-changing request without this session's CSRF token, or from another origin."""


class BadWorkspace(Exception):
    """A workspace name outside `[A-Za-z0-9_-]{1,64}`."""


@dataclass
class Console:
    """What the handlers need, set on `app.state.console` by `create_app`."""

    settings: Any
    api: Any
    feed: Any
    signer: Any
    clock: Any
    open_feeds: int = 0


def console(request: Request) -> Console:
    return request.app.state.console


async def guard(request: Request) -> Session:
    """Every page but sign-in: a valid session; for anything but GET, also its CSRF token
    (form field or `X-CSRF-Token` header, as htmx sends it) and, if the browser names one,
    the console's own origin."""
    c = console(request)
    session = c.signer.read(request.cookies.get(SESSION_COOKIE), c.clock())
    if session is None:
        raise NotSignedIn()
    request.state.session = session
    if request.method not in SAFE_METHODS:
        # Host only, not scheme: behind a TLS-terminating proxy the browser says https and
        # the console sees http.
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise CsrfRefused()
        given = request.headers.get(CSRF_HEADER)
        if given is None and "form" in request.headers.get("content-type", ""):
            given = (await request.form()).get(CSRF_FIELD)
        if not c.signer.csrf_ok(session.session_id, given if isinstance(given, str) else None):
            raise CsrfRefused()
    return session


def workspace(request: Request, ws: str) -> Workspace:
    """The workspace named in the path, with its operator calls."""
    if not _WORKSPACE.fullmatch(ws):
        raise BadWorkspace()
    return Workspace(console(request).api, ws)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page or fragment, with the session's CSRF token, the workspace and the partners."""
    c = console(request)
    session = getattr(request.state, "session", None)
    context.setdefault("ws", request.path_params.get("ws"))
    context.update(
        request=request,
        csrf_token=c.signer.csrf_token(session.session_id) if session else "",
        partners=c.settings.partner_names(),
        signed_in=session is not None,
    )
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def go(request: Request, url: str) -> Response:
    """After a form: htmx follows `HX-Redirect`, a plain browser a 303."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
