"""`POST /users/export/ids` (docs/braze-rest.md): which users a body selects, and how each is shown.

Selectors as Braze has them: up to 50 `external_ids` and 50 `user_aliases`, one `device_id`,
`braze_id` (the internal user ID), `email_address` or `phone` (the profile's `email` /
`phone` attributes). External IDs and the braze_id that name no profile come back in
`invalid_user_ids`. Braze's standard profile fields are shown at the top level of a user,
every other attribute under `custom_attributes`; `fields_to_export` keeps only the fields
it names (identifiers always stay, so a user can be told apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from cohort_shared import schemas as s
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .errors import InvalidRequest, describe_validation_error
from .fields import IdentifierString

MAX_SELECTED = 50
SELECTORS = ("external_ids", "user_aliases", "device_id", "braze_id", "email_address", "phone")
STANDARD_FIELDS = frozenset({
    "first_name", "last_name", "email", "phone", "dob", "country", "home_city", "language", "gender",
    "time_zone", "email_subscribe", "push_subscribe", "date_of_first_session", "date_of_last_session",
})
"""Braze's own profile fields: exported beside the identifiers, not as custom attributes."""
ALWAYS_EXPORTED = ("external_id", "braze_id", "user_aliases")


def _one_object_as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value  # Braze's own examples send one alias object


class ExportBody(BaseModel):
    """Body of `POST /users/export/ids`: at least one selector."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    external_ids: list[IdentifierString] = Field(default=[], max_length=MAX_SELECTED)
    user_aliases: Annotated[list[s.Alias], BeforeValidator(_one_object_as_list)] = Field(default=[], max_length=MAX_SELECTED)
    device_id: IdentifierString | None = None
    braze_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    email_address: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    fields_to_export: list[Annotated[str, Field(max_length=255)]] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _selects_someone(self) -> ExportBody:
        if not any(getattr(self, name) for name in SELECTORS):
            raise PydanticCustomError("ingest_no_selector", f"must hold at least one of {', '.join(SELECTORS)}")
        return self


def parse_export(body: dict[str, Any]) -> ExportBody:
    try:
        return ExportBody.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


@dataclass(frozen=True)
class ExportedProfile:
    """What the export view knows of one profile."""

    user_id: str
    external_id: str | None
    aliases: list[s.Alias]
    device_ids: list[str]
    attributes: dict[str, Any]
    cohorts: list[dict[str, str]] = field(default_factory=list)
    """[{partner, cohort_id, name}], sorted"""

    def holds(self, kind: str, value: str, label: str | None = None) -> bool:
        """Does this profile carry the identifier (or the email / phone attribute)?"""
        if kind == "external_id":
            return self.external_id == value
        if kind == "alias":
            return any(a.alias_label == label and a.alias_name == value for a in self.aliases)
        if kind == "device_id":
            return value in self.device_ids
        if kind == "email":
            return isinstance(self.attributes.get("email"), str) and self.attributes["email"].lower() == value.lower()
        return self.attributes.get("phone") == value


def exported_user(profile: ExportedProfile, fields_to_export: list[str] | None) -> dict[str, Any]:
    """One user of the answer: identifiers, Braze's standard fields, `custom_attributes`, `cohorts`."""
    user: dict[str, Any] = {
        "external_id": profile.external_id,
        "braze_id": profile.user_id,
        "user_aliases": [a.model_dump() for a in profile.aliases],
    }
    standard = {k: v for k, v in sorted(profile.attributes.items()) if k in STANDARD_FIELDS}
    custom = {k: v for k, v in sorted(profile.attributes.items()) if k not in STANDARD_FIELDS}
    user |= standard | {"custom_attributes": custom, "cohorts": profile.cohorts}
    if fields_to_export is None:
        return user
    return {k: v for k, v in user.items() if k in ALWAYS_EXPORTED or k in fields_to_export}
