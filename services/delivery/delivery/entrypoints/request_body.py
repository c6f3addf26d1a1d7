"""Reading a request body: bounded (413), a JSON object (400)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from ..domain.errors import InvalidRequest, RequestRejected

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(RequestRejected):
    status = 413


async def read_json_object(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"body must be at most {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"body must be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest("body must be valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body
