"""Bodies of the profile identity API (SPEC §2) and the identity.events message each becomes.

Entries use the shared schema models as they are, so what ingest accepts is exactly what
identity-resolution reads. Unknown fields are refused at every level: a misspelt field
would otherwise be dropped without a word.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from cohort_shared import schemas as s
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .errors import InvalidRequest, describe_validation_error
from .fields import IdentifierString

MAX_ENTRIES_PER_REQUEST = 1_000


def _entries() -> Any:
    return Field(default=[], max_length=MAX_ENTRIES_PER_REQUEST)


def _two_profiles(update: s.MergeUpdate) -> s.MergeUpdate:
    if update.identifier_to_merge == update.identifier_to_keep:
        raise PydanticCustomError("ingest_merge_into_itself", "must name two different profiles")
    return update


class IdentityBody(BaseModel):
    """Common shape: lists of entries; at least one entry in all."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: ClassVar[type[s.Message]]  # the identity.events message this body becomes

    @model_validator(mode="after")
    def _not_empty(self) -> IdentityBody:
        if self.accepted_count() == 0:
            fields = ", ".join(type(self).model_fields)
            raise PydanticCustomError("ingest_empty_request", f"must hold at least one entry in {fields}")
        return self

    def accepted_count(self) -> int:
        return sum(len(getattr(self, name)) for name in type(self).model_fields)

    def to_event(self, workspace_id: str, request_id: str, now: datetime) -> s.Message:
        return self.event(workspace_id=workspace_id, request_id=request_id, requested_at=now, **dict(self))


class TrackBody(IdentityBody):
    """`POST /workspaces/{ws}/users/track`: identified users by external_id, anonymous ones by device_id."""

    event = s.TrackRequested
    attributes: list[s.TrackedUser] = _entries()


class AliasNewBody(IdentityBody):
    """`POST /workspaces/{ws}/users/alias/new`: add an alias, or create an alias-only user."""

    event = s.AliasRequested
    user_aliases: list[s.NewAlias] = _entries()


class IdentifyBody(IdentityBody):
    """`POST /workspaces/{ws}/users/identify`: give an alias-only or anonymous profile an external_id."""

    event = s.IdentifyRequested
    aliases_to_identify: list[s.AliasToIdentify] = _entries()
    devices_to_identify: list[s.DeviceToIdentify] = _entries()


class MergeBody(IdentityBody):
    """`POST /workspaces/{ws}/users/merge`: merge one profile into another."""

    event = s.MergeRequested
    merge_updates: list[Annotated[s.MergeUpdate, AfterValidator(_two_profiles)]] = _entries()


class DeleteBody(IdentityBody):
    """`POST /workspaces/{ws}/users/delete`: delete profiles and their memberships."""

    event = s.DeleteRequested
    external_ids: list[IdentifierString] = _entries()
    user_aliases: list[s.Alias] = _entries()
    device_ids: list[IdentifierString] = _entries()
    braze_ids: list[s.UserId] = _entries()


IDENTITY_BODIES: dict[str, type[IdentityBody]] = {
    "track": TrackBody,
    "alias/new": AliasNewBody,
    "identify": IdentifyBody,
    "merge": MergeBody,
    "delete": DeleteBody,
}


def parse_identity_body(model: type[IdentityBody], body: dict[str, Any]) -> IdentityBody:
    """Validate an identity API body; InvalidRequest names the first bad field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None
