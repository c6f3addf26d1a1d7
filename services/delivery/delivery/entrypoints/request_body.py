"""Reading a request body: bounded (413), a JSON object (400); an empty body is `{}`."""

from __future__ import annotations

from typing import Any

from cohort_shared import request_body
from fastapi import Request

from ..domain.errors import InvalidRequest, RequestRejected

# Above the largest valid body (1,000 cohort IDs of up to 255 characters, 100 partners, a
# 2,048-character URL: about 270 KB), so a body the document allows is never refused for size.
MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(RequestRejected):
    status = 413


async def read_json_object(request: Request) -> dict[str, Any]:
    return await request_body.read_json_object(request, MAX_BODY_BYTES, too_large=BodyTooLarge,
                                               invalid=InvalidRequest, empty_is_empty_object=True)
