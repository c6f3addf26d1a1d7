"""Request bodies in /openapi.json for handlers that read the body themselves.

ingest's producer API must check the keys before the fields (SPEC §2), and delivery checks a
webhook URL before its other fields, so their handlers take the raw request rather than
letting FastAPI validate a body model first. The models are still documented: each route
points at its model's schema, added to the document's components.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

REF = "#/components/schemas/{model}"


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` for a route whose JSON body is `model` (list it in document_request_bodies)."""
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def document_request_bodies(app: FastAPI, models: Iterable[type[BaseModel]]) -> None:
    """Build the document once, with each body model (and the models it uses) as a component."""
    models = list(models)

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        # Validation errors answer 400 with an ErrorBody (http_errors), never FastAPI's 422.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        for model in models:
            body = model.model_json_schema(ref_template=REF)
            components.update(body.pop("$defs", {}))
            components[model.__name__] = body
        app.openapi_schema = schema
        return schema

    app.openapi = build
