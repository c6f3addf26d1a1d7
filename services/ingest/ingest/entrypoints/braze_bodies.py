"""The Braze REST bodies as /openapi.json documents them. The handlers parse the raw body
themselves (the key is checked before the fields, and invalid objects are reported rather
than refusing the request: `domain/braze_requests.py`); these models only describe it."""

from __future__ import annotations

from typing import Annotated, Any

from cohort_shared import schemas as s
from pydantic import BaseModel, ConfigDict, Field

from ..domain.braze_requests import MAX_OBJECTS, MAX_TRACK_OBJECTS

Identifier = Annotated[str, Field(max_length=s.MAX_IDENTIFIER_LENGTH)]
BrazeId = Annotated[str, Field(min_length=1, max_length=64, description="the internal user ID")]


class _NamesUser(BaseModel):
    model_config = ConfigDict(extra="allow")
    external_id: Identifier | None = None
    user_alias: s.Alias | None = None
    braze_id: BrazeId | None = None
    update_existing_only: bool = Field(False, alias="_update_existing_only",
                                       description="only update a profile that exists; never create one")


class BrazeAttributes(_NamesUser):
    """A user (exactly one of external_id, user_alias, braze_id) and attributes to set, each
    any other field: its latest value is kept (null removes it)."""


class BrazeEvent(_NamesUser):
    """A custom event: creates or touches its user; counted, not stored."""

    name: str
    time: str = Field(description="ISO-8601")
    app_id: str | None = None
    properties: dict[str, Any] | None = None


class BrazePurchase(_NamesUser):
    """A purchase: creates or touches its user; counted, not stored."""

    product_id: str
    currency: str = Field(min_length=3, max_length=3)
    price: float
    quantity: int = Field(1, ge=1, le=100)
    time: str = Field(description="ISO-8601")
    app_id: str | None = None
    properties: dict[str, Any] | None = None


def _objects(limit: int) -> Any:
    return Field(default=[], max_length=limit)


class BrazeTrackBody(BaseModel):
    """`POST /users/track`: attributes, events and purchases, at most 75 of each."""

    attributes: list[BrazeAttributes] = _objects(MAX_TRACK_OBJECTS)
    events: list[BrazeEvent] = _objects(MAX_TRACK_OBJECTS)
    purchases: list[BrazePurchase] = _objects(MAX_TRACK_OBJECTS)


class BrazeAliasNewBody(BaseModel):
    """`POST /users/alias/new`: add an alias to a user, or create an alias-only user."""

    user_aliases: list[s.NewAlias] = _objects(MAX_OBJECTS)


class BrazeIdentifyBody(BaseModel):
    """`POST /users/identify`: give an alias-only (or anonymous) profile an external_id."""

    aliases_to_identify: list[s.AliasToIdentify] = _objects(MAX_OBJECTS)
    devices_to_identify: list[s.DeviceToIdentify] = _objects(MAX_OBJECTS)


class BrazeMergeBody(BaseModel):
    """`POST /users/merge`: merge one profile into another."""

    merge_updates: list[s.MergeUpdate] = _objects(MAX_OBJECTS)


class BrazeDeleteBody(BaseModel):
    """`POST /users/delete`: delete profiles and their memberships."""

    external_ids: list[Identifier] = _objects(MAX_OBJECTS)
    user_aliases: list[s.Alias] = _objects(MAX_OBJECTS)
    braze_ids: list[BrazeId] = _objects(MAX_OBJECTS)
