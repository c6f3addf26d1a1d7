"""Reading a request body as a JSON object: bounded while it arrives, so a body over the limit
is refused (413) before it is all in memory, and refused clearly (400) when it is not JSON or
not an object. Each service raises its own error types (`too_large`, `invalid`)."""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message as HeaderValue
from typing import Any

import orjson
from fastapi import Request


def is_json_type(content_type: str | None) -> bool:
    """application/json or any +json type; no Content-Type at all is tolerated (some HTTP
    clients send JSON without saying so)."""
    if not content_type:
        return True
    header = HeaderValue()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json_object(request: Request, limit: int, *, too_large: Callable[[str], Exception],
                           invalid: Callable[[str], Exception], check_content_type: bool = False,
                           empty_is_empty_object: bool = False) -> dict[str, Any]:
    """The body as a JSON object. Stops reading as soon as it passes `limit` bytes."""
    if check_content_type and not is_json_type(request.headers.get("content-type")):
        raise invalid("Content-Type must be application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"body must be at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"body must be at most {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if empty_is_empty_object and not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid("body must be valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("body must be a JSON object")
    return body
