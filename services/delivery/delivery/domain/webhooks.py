"""A webhook: where to send, what to send (its filter), whether to send now (its status),
and the requests that create and change one."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from cohort_shared.schemas import WORKSPACE_PATTERN
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidRequest
from .filters import WebhookFilter
from .urls import check_url

Status = Literal["active", "paused"]


class Webhook(BaseModel):
    """A webhook as stored; `secret` and `previous_secret` are sealed (see secret_box)."""

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    workspace_id: str
    url: str
    description: str | None = None
    filter: WebhookFilter = WebhookFilter()
    status: Status = "active"
    created_at: datetime
    secret: str
    previous_secret: str | None = None
    previous_secret_until: float | None = Field(None, description="epoch seconds; the old secret signs until then")


class CreateWebhookBody(BaseModel):
    """POST /workspaces/{ws}/webhooks"""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2048,
        pattern=r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[!-~]*)?$",
        description="http or https; a host that resolves to a loopback, link-local or private address is "
                    "refused unless WEBHOOK_ALLOW_PRIVATE=true")
    description: str | None = Field(None, max_length=1024)
    filter: WebhookFilter | None = None


class UpdateWebhookBody(BaseModel):
    """PATCH /workspaces/{ws}/webhooks/{id}"""

    model_config = ConfigDict(extra="forbid")

    status: Status


class ReplayBody(BaseModel):
    """POST /workspaces/{ws}/webhooks/{id}/replay: send again every matching event since `from`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: datetime = Field(alias="from", description="ISO-8601 with a time zone")

    @field_validator("from_", mode="before")
    @classmethod
    def _a_timestamp_string(cls, value: object) -> object:
        # A number would pass as epoch seconds in pydantic's lax mode; the document says string.
        if not isinstance(value, str | datetime):
            raise ValueError("must be an ISO-8601 string with a time zone")
        return value


def new_webhook_id() -> str:
    return f"wh_{uuid.uuid4().hex}"


def check_workspace(workspace_id: str) -> str:
    if not re.fullmatch(WORKSPACE_PATTERN, workspace_id):
        raise InvalidRequest("workspace must match [A-Za-z0-9_-]{1,64}")
    return workspace_id


def parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """`body` as `model`, or a 400 naming the first field that is wrong."""
    if model is CreateWebhookBody:
        check_url(body.get("url"))
    try:
        parsed = model.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_first_error(error)) from None
    if isinstance(parsed, ReplayBody) and parsed.from_.tzinfo is None:
        raise InvalidRequest("from must be an ISO-8601 time with a time zone")
    return parsed


def describe_first_error(error: ValidationError) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    path = path or "body"
    if first["type"] == "missing":
        return f"{path} is required"
    if first["type"] == "extra_forbidden":
        return f"{path} is not a known field"
    return f"{path}: {first['msg']}"
