"""Wires settings, the operator API client, the change feed and the console's FastAPI app.

`create_app` takes its adapters so unit tests run the very same app on answers of their own
(an httpx transport in place of the services, an in-memory feed); left out, they are the
services over HTTP and Kafka. The console keeps no state: sessions are signed cookies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from cohort_shared.ops import add_ops_routes
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .adapters.change_feed import ChangeFeed, KafkaChangeFeed
from .adapters.operator_api import HttpOperatorApi, NotAvailable, OperatorApi, Refused, Unreachable
from .domain.sessions import SessionSigner
from .entrypoints import activity, auth, cohorts, partners, segments, users
from .entrypoints.web import BadWorkspace, Console, CsrfRefused, NotSignedIn, is_htmx, render
from .settings import ConsoleSettings

log = logging.getLogger("console")
logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per upstream call is noise
PUBLIC_PATHS = ("/signin", "/static/", "/healthz", "/readyz", "/metrics")
"""Everything else needs a session (tests walk the routes to check)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(settings: ConsoleSettings, *, api: OperatorApi | None = None, feed: ChangeFeed | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The console app; adapters not given are the real ones (the services over HTTP, Kafka)."""
    api = api or HttpOperatorApi(settings)
    feed = feed or KafkaChangeFeed(settings)
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    state = Console(settings, api, feed, SessionSigner(token, settings.session_hours * 3600), clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting with settings %s", settings.masked())
        if token is None:
            log.warning("ADMIN_TOKEN is not set: nobody can sign in")
        try:
            yield
        finally:
            await api.aclose()

    app = FastAPI(title="Cohort Import — operator console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.console = state
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    app.include_router(auth.public)
    app.include_router(auth.signed_in)
    for module in (partners, cohorts, segments, users, activity):
        app.include_router(module.router)
    add_error_pages(app)

    async def serving() -> bool:
        return True  # ready when it serves: an unreachable service is shown on the pages that need it

    add_ops_routes(app, {"http": serving})

    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer (plain ASGI, so server-sent events stream through)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        await self.app(scope, receive, with_headers)


def add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if request.method == "GET" and not is_htmx(request) and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/signin", status_code=303)
        return PlainTextResponse("sign in first", status_code=401)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _: CsrfRefused) -> Response:
        return render(request, "error.html", 403, message="This form did not come from this console session. "
                                                          "Reload the page and try again.")

    @app.exception_handler(BadWorkspace)
    async def bad_workspace(request: Request, _: BadWorkspace) -> Response:
        return render(request, "error.html", 400, ws=None,
                      message="A workspace name is 1 to 64 characters of A-Z, a-z, 0-9, _ and -.")

    @app.exception_handler(Unreachable)
    async def unreachable(request: Request, error: Unreachable) -> Response:
        log.warning("%s unreachable: %s", error.service, error.message)
        return render(request, "error.html", 502, message=f"{error.service} is not answering right now "
                                                          f"({error.message}). Try again in a moment.")

    @app.exception_handler(NotAvailable)
    async def not_available(request: Request, error: NotAvailable) -> Response:
        return render(request, "error.html", 404, message=f"Not available: {error.service} does not offer this here.")

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Response:
        return render(request, "error.html", error.status or 400, message=f"{error.service}: {error.message}")
