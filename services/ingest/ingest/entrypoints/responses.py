"""Response bodies, as documented in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cohort_shared.openapi import ErrorBody, refusals
from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "errors"]


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


errors = refusals  # the `responses=` of a route: each status answers an ErrorBody
