"""Why a request is refused, and how a validation error becomes one message naming its field.

Every refusal carries an HTTP status and a message; the HTTP layer turns it into
`{"message": "..."}`. Messages never echo a submitted value (it may be a secret).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

MAX_NAME_IN_MESSAGE = 64  # a submitted field name can be huge; quote only its start


class RequestRejected(Exception):
    """A request the service refuses, with the status and message the caller gets."""

    status = 400

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None,
                 details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.details = dict(details or {})
        """More of the answer beside `message` (Braze's `errors` list)."""


class InvalidRequest(RequestRejected):
    status = 400


class Unauthorized(RequestRejected):
    status = 401


class Forbidden(RequestRejected):
    status = 403


class NotFound(RequestRejected):
    status = 404


class BodyTooLarge(RequestRejected):
    status = 413


class RateLimited(RequestRejected):
    status = 429

    def __init__(self, retry_after_seconds: int, message: str = "Rate limit exceeded for this data import key; retry later",
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_seconds), **(headers or {})})


class Unavailable(RequestRejected):
    status = 503


def field_path(loc: Sequence[str | int]) -> str:
    """("cohort_changes", 0, "user_ids", 2) → "cohort_changes[0].user_ids[2]"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = str(part)[:MAX_NAME_IN_MESSAGE]
            path += f".{name}" if path else name
    return path or "body"


def _describe(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    fixed = {
        "missing": "is required",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "bool_type": "must be true or false",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "extra_forbidden": "is not an allowed field",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "dict_type": "must be a JSON object",
    }
    if kind in fixed:
        return fixed[kind]
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must be a non-empty string" if ctx.get("min_length") == 1 else f"must be at least {ctx.get('min_length')} characters"
    if kind == "too_long":
        return f"must hold at most {ctx.get('max_length')} entries"
    if kind == "too_short":
        return f"must hold at least {ctx.get('min_length')} entr{'y' if ctx.get('min_length') == 1 else 'ies'}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind.startswith("ingest_"):  # our own rules (PydanticCustomError) carry their message
        return error["msg"]
    return f"is invalid ({kind})"


def describe_validation_error(
    errors: ValidationError | Sequence[Mapping[str, Any]],
    *,
    overrides: Mapping[tuple, str] | None = None,
    strip_loc_prefix: bool = False,
) -> str:
    """The first error as `<field> <what is wrong>`, or the fixed message `overrides` gives
    for that field (SPEC §2 prescribes some word for word)."""
    items = errors.errors() if isinstance(errors, ValidationError) else list(errors)
    if not items:
        return "body is invalid"
    first = items[0]
    loc = tuple(first.get("loc", ()))
    if strip_loc_prefix and loc and loc[0] in ("body", "path", "query", "header", "cookie"):
        loc = loc[1:]
    if overrides and loc in overrides:
        return overrides[loc]
    return f"{field_path(loc)} {_describe(first)}"
