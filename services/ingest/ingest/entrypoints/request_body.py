"""Reading a request body: bounded while it arrives (413), JSON only (400)."""

from __future__ import annotations

from email.message import Message as HeaderValue
from typing import Any

import orjson
from fastapi import Request

from ..domain.errors import BodyTooLarge, InvalidRequest


def _is_json(content_type: str | None) -> bool:
    if not content_type:  # tolerated: some HTTP clients send JSON without saying so
        return True
    header = HeaderValue()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object. Stops reading, with a 413, as soon as it passes `limit` bytes."""
    if not _is_json(request.headers.get("content-type")):
        raise InvalidRequest("Content-Type must be application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body must be at most {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body must be at most {limit} bytes")
        chunks.append(chunk)
    try:
        body = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise InvalidRequest("body must be valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body
