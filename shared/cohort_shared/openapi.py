"""What every service's `/openapi.json` declares beyond what FastAPI infers, so the document
describes what the code enforces (docs/api/, checked by schemathesis in `make test`):

- every refusal is a 400 `{"message"}` (the services answer validation errors so, never 422);
- an operator route can answer 401 (the operator token) and 503 (Redis cannot serve now);
- a workspace in a path matches `WORKSPACE_PATTERN`; a page's `limit` is 1 to `MAX_LIMIT`;
- a 405 names, in `Allow`, every method the path has, not only those of the first route
  Starlette matched (`allow_header`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .paging import MAX_LIMIT
from .schemas import WORKSPACE_PATTERN

REF = "#/components/schemas/{model}"
ERROR_BODY = "ErrorBody"
WORKSPACE_PARAMETERS = {"ws", "workspace_id"}
STATUS_TEXT = {400: "Malformed or invalid request; the message names the field",
               401: "Missing or invalid operator token", 404: "Not found", 409: "Ambiguous",
               413: "Body too large", 429: "Rate limited", 503: "Kafka or Redis cannot serve right now; retry"}


class ErrorBody(BaseModel):
    """Every 4xx/5xx: what is wrong, naming the field."""

    message: str


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status answers an ErrorBody."""
    return {status: {"model": ErrorBody, "description": STATUS_TEXT.get(status, "Refused")} for status in statuses}


def json_body(model: type[BaseModel] | str) -> dict[str, Any]:
    """`openapi_extra=` for a route that reads its JSON body itself (list the model in
    `install_openapi(..., body_models=)`, or name a component given in its `schemas=`), e.g.
    to check keys before fields."""
    schema = {"$ref": REF.format(model=model if isinstance(model, str) else model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI, *, body_models: Iterable[type[BaseModel]] = (),
                    schemas: dict[str, dict[str, Any]] | None = None,
                    public_prefixes: tuple[str, ...] = ()) -> None:
    """Make `app.openapi()` build the finished document once. `schemas` are components
    written by hand (a grammar pydantic cannot state); paths under `public_prefixes` are not
    operator routes (they declare their own refusals)."""
    models = list(body_models)

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components[ERROR_BODY] = ErrorBody.model_json_schema(ref_template=REF)
        components.update(schemas or {})
        for model in models:
            body = model.model_json_schema(ref_template=REF)
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        for path, operations in schema.get("paths", {}).items():
            operator = not path.startswith(public_prefixes) if public_prefixes else True
            for operation in operations.values():
                finish_operation(operation, operator)
        app.openapi_schema = schema
        return schema

    app.openapi = build


def finish_operation(operation: dict[str, Any], operator: bool) -> None:
    """Constraints and refusals of one operation, as the services enforce them."""
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        schema = parameter.setdefault("schema", {})
        if parameter["in"] == "path" and parameter["name"] in WORKSPACE_PARAMETERS:
            schema["pattern"] = WORKSPACE_PATTERN
        if parameter["in"] == "query" and parameter["name"] == "cursor":
            parameter["description"] = ("opaque: the next_cursor an earlier page of this list answered; "
                                        "any other value is a 400")
        if parameter["in"] == "query" and parameter["name"] == "limit":
            for option in schema.get("anyOf", [schema]):
                if option.get("type") == "integer":
                    option.update(minimum=1, maximum=MAX_LIMIT)
    statuses = [400] if parameters or "requestBody" in operation else []
    if operator:
        statuses += [401, 503]
    for status, answer in refusals(*statuses).items():
        responses.setdefault(str(status), {
            "description": answer["description"],
            "content": {"application/json": {"schema": {"$ref": REF.format(model=ERROR_BODY)}}},
        })


def allow_header(request: Request) -> str:
    """Every method some route of this app serves at the request's path."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in request.app.router.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods - {"HEAD"}))


def error_headers(request: Request, status: int, headers: dict[str, str] | None) -> dict[str, str] | None:
    """The headers of an HTTP error answer: a 405's `Allow` lists every method of the path."""
    if status != 405:
        return headers
    return {**(headers or {}), "Allow": allow_header(request)}
