"""Reading a request body: bounded while it arrives (413), JSON only (400)."""

from __future__ import annotations

from typing import Any

from cohort_shared import request_body
from fastapi import Request

from ..domain.errors import BodyTooLarge, InvalidRequest


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object. Stops reading, with a 413, as soon as it passes `limit` bytes."""
    return await request_body.read_json_object(request, limit, too_large=BodyTooLarge, invalid=InvalidRequest,
                                               check_content_type=True)
