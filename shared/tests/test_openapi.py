"""What every service's OpenAPI document adds to FastAPI's, and the 405's Allow header."""

from __future__ import annotations

from cohort_shared.openapi import error_headers, install_openapi, refusals
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/workspaces/{ws}/things", responses=refusals(404))
    async def list_things(ws: str, cursor: str | None = None, limit: int | None = Query(None)) -> dict:
        return {}

    @app.post("/workspaces/{ws}/things")
    async def add_thing(ws: str) -> dict:
        return {}

    @app.get("/partners/{p}")
    async def partner(p: str) -> dict:
        return {}

    @app.exception_handler(HTTPException)
    async def on_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"message": str(error.detail)}, error.status_code,
                            headers=error_headers(request, error.status_code, error.headers))

    install_openapi(app, public_prefixes=("/partners/",))
    return app


def test_the_document_states_workspace_limit_cursor_and_every_refusal() -> None:
    paths = _app().openapi()["paths"]
    listing = paths["/workspaces/{ws}/things"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["ws"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    integer = next(o for o in params["limit"]["schema"]["anyOf"] if o.get("type") == "integer")
    assert (integer["minimum"], integer["maximum"]) == (1, 1000)
    assert "opaque" in params["cursor"]["description"]
    assert set(listing["responses"]) == {"200", "400", "401", "404", "503"}
    assert set(paths["/partners/{p}"]["get"]["responses"]) == {"200", "400"}  # not an operator route


def test_a_405_lists_every_method_of_the_path() -> None:
    client = TestClient(_app())
    answer = client.delete("/workspaces/a/things")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
