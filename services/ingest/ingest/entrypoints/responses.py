"""Response bodies, as documented in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every 4xx/5xx: what is wrong, naming the field."""

    message: str


class Success(BaseModel):
    message: Literal["success"] = "success"


class Dropped(BaseModel):
    pre_2010: int


class CohortChangesSuccess(Success):
    """Counts are of identifiers, not entries."""

    accepted: int
    dropped: Dropped


class IdentitySuccess(Success):
    """`accepted`: entries accepted; `request_id`: where identity-resolution reports, once it
    applied them, any entries it skipped (GET /workspaces/{ws}/identity-requests/{request_id})."""

    accepted: int
    request_id: str


class CreatedKey(BaseModel):
    """The data import key in clear: shown this once, never again."""

    key_id: str
    data_import_key: str
    rest_endpoint: str


class ListedKey(BaseModel):
    key_id: str
    masked: str
    created_at: datetime
    last_used_at: datetime | None


class KeyList(BaseModel):
    keys: list[ListedKey]
    next_cursor: str | None = Field(description="the cursor of the next page; null on the last page")


def errors(*statuses: int) -> dict:
    """The `responses=` of a route: each status answers an ErrorBody."""
    return {status: {"model": ErrorBody} for status in statuses}


class CreatedRestKey(BaseModel):
    """The REST API key in clear: shown this once, never again; `rest_endpoint` is the base URL
    to give a Braze client."""

    key_id: str
    rest_api_key: str
    name: str
    permissions: list[str]
    rest_endpoint: str


class ListedRestKey(ListedKey):
    name: str
    permissions: list[str]


class RestKeyList(BaseModel):
    keys: list[ListedRestKey]
    next_cursor: str | None = Field(description="the cursor of the next page; null on the last page")


class BrazeObjectError(BaseModel):
    """An invalid object of the request, not applied (the valid ones were)."""

    type: str = Field(description="what is wrong with it")
    input_array: str = Field(description="the array it was in")
    index: int = Field(description="its index in that array")


class BrazeSuccess(BaseModel):
    """Braze's answer: `success` once the valid objects are durably in Kafka, with Braze's
    counts (`attributes_processed`, `events_processed`, `purchases_processed`, `aliases_processed`,
    `deleted`, as the endpoint has them) and the objects not applied."""

    model_config = {"extra": "allow"}
    message: Literal["success"] = "success"
    errors: list[BrazeObjectError] | None = None


class BrazeError(ErrorBody):
    """A refused request: `message`, and for a request with no valid object, `errors`."""

    errors: list[BrazeObjectError] | None = None


class ExportedUser(BaseModel):
    model_config = {"extra": "allow"}
    external_id: str | None
    braze_id: str
    user_aliases: list[dict[str, str]]
    custom_attributes: dict | None = None
    cohorts: list[dict[str, str]] | None = None


class ExportSuccess(BaseModel):
    message: Literal["success"] = "success"
    users: list[ExportedUser]
    invalid_user_ids: list[str]


def braze_errors(*statuses: int) -> dict:
    """The `responses=` of a Braze route: each status answers a BrazeError."""
    return {status: {"model": BrazeError} for status in statuses}
