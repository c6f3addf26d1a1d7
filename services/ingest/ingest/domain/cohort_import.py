"""The partner cohort import rules of docs/producer-api.md, as pure functions of a parsed body.

A request becomes at most two messages, both keyed by its cohort:
`CohortChangesReceived` (cohort.meta: what was sent, for the sync report) and ONE
`CohortChangesAccepted` (cohort.changes) holding every accepted change of the request.

Why one message per request: Kafka appends a record atomically, so the request's changes
are durably accepted all together or not at all — a 202 is sent only once that record is
acknowledged, and a 503 means it may or may not have landed, never a part of it. A retry
of a request is a new request (new `request_id`) whose adds and removes are set
operations downstream, so applying it again changes nothing.

Why keyed by cohort: every change for one identifier in one cohort comes through that
cohort's partition, in the order the requests were accepted (the producer is idempotent
with acks=all, so a retried batch is neither duplicated nor reordered). Inside a request
the changes keep the order the producer wrote them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cohort_shared.schemas import (
    CohortChangesAccepted,
    CohortChangesReceived,
    CohortNamed,
    required_in_schema,
    some_list_not_empty,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import InvalidRequest, describe_validation_error
from .fields import CohortIdField, CohortNameField, IdentifierString, IsoTime

MAX_IDENTIFIERS_PER_REQUEST = 1_000
IDENTIFIER_FIELDS = ("user_ids", "device_ids", "aliases")


class _PartnerBody(BaseModel):
    # Top-level fields a producer adds are ignored (Braze's own API tolerates them).
    model_config = ConfigDict(extra="ignore", frozen=True)
    partner_api_key: SecretStr = Field(description="the partner's API key, checked first")
    client_secret: SecretStr = Field(description="the workspace's data import key, checked second")


class CohortNamingBody(_PartnerBody):
    """Body of `POST /partners/{partner}/cohorts`: create or rename a cohort."""

    model_config = ConfigDict(json_schema_extra=required_in_schema("cohort_id", "name", "created_at"))

    cohort_id: CohortIdField = Field(None, validate_default=True)
    name: CohortNameField = Field(None, validate_default=True)
    created_at: IsoTime = Field(None, validate_default=True, description="when the partner created the cohort")


class AliasEntry(BaseModel):
    """A user alias in a cohort change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    alias_name: IdentifierString
    alias_label: IdentifierString


class CohortChangeEntry(BaseModel):
    """One entry of `cohort_changes`; `should_remove` and `timestamp` apply to each identifier in it."""

    # Unknown fields are refused: a typo such as "user_id" would otherwise drop changes silently.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=some_list_not_empty(*IDENTIFIER_FIELDS))
    # default_factory, not a default value: pydantic deep-copies a mutable default per instance.
    user_ids: list[IdentifierString] = Field(default_factory=list, description="external IDs")
    device_ids: list[IdentifierString] = Field(default_factory=list)
    aliases: list[AliasEntry] = Field(default_factory=list)
    should_remove: StrictBool = False
    timestamp: IsoTime | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> CohortChangeEntry:
        if not (self.user_ids or self.device_ids or self.aliases):
            raise PydanticCustomError("ingest_empty_entry", "must hold at least one of user_ids, device_ids, aliases")
        return self

    def identifier_count(self) -> int:
        return len(self.user_ids) + len(self.device_ids) + len(self.aliases)

    def changes(self) -> list[tuple]:
        """One `CohortChange` row per identifier, in the order the producer wrote them."""
        remove, stamp = self.should_remove, self.timestamp
        return (
            [("external_id", v, None, remove, stamp) for v in self.user_ids]
            + [("device_id", v, None, remove, stamp) for v in self.device_ids]
            + [("alias", a.alias_name, a.alias_label, remove, stamp) for a in self.aliases]
        )


class CohortChangesBody(_PartnerBody):
    """Body of `POST /partners/{partner}/cohorts/users`: add or remove cohort members; at most
    1,000 identifiers (user_ids, device_ids and aliases together) in all its entries."""

    model_config = ConfigDict(json_schema_extra=required_in_schema("cohort_id"))

    cohort_id: CohortIdField = Field(None, validate_default=True)
    cohort_changes: list[CohortChangeEntry] = Field(min_length=1)

    @field_validator("cohort_changes", mode="before")
    @classmethod
    def _at_most_max_identifiers(cls, value: Any) -> Any:
        # Counted on the raw lists, before validating thousands of entries only to refuse them.
        if isinstance(value, list):
            count = len(value) if len(value) > MAX_IDENTIFIERS_PER_REQUEST else sum(
                len(entry.get(name)) for entry in value if isinstance(entry, dict)
                for name in IDENTIFIER_FIELDS if isinstance(entry.get(name), list)
            )
            if count > MAX_IDENTIFIERS_PER_REQUEST:
                raise PydanticCustomError(
                    "ingest_too_many_identifiers",
                    "must hold at most 1,000 identifiers (user_ids, device_ids and aliases together) per request",
                )
        return value


def parse_cohort_naming(body: dict[str, Any]) -> CohortNamingBody:
    """Validate a naming body; InvalidRequest names the first bad field."""
    try:
        return CohortNamingBody.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


def parse_cohort_changes(body: dict[str, Any]) -> CohortChangesBody:
    """Validate a changes body; InvalidRequest names the first bad field."""
    try:
        return CohortChangesBody.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


def cohort_named(workspace_id: str, partner: str, body: CohortNamingBody, now: datetime) -> CohortNamed:
    return CohortNamed(
        workspace_id=workspace_id, partner=partner, cohort_id=body.cohort_id,
        name=body.name, created_at=body.created_at, named_at=now,
    )


@dataclass(frozen=True)
class CohortImport:
    """What one request becomes: the receipt, and the accepted changes (None if none were)."""

    received: CohortChangesReceived
    accepted: CohortChangesAccepted | None

    @property
    def accepted_count(self) -> int:
        return len(self.accepted.changes) if self.accepted else 0


def cohort_import(
    workspace_id: str, partner: str, body: CohortChangesBody, *, cutoff: datetime, request_id: str, now: datetime
) -> CohortImport:
    """Apply the retention cut-off: changes stamped before `cutoff` are dropped and counted."""
    accepted: list[tuple] = []
    received = dropped = 0
    for entry in body.cohort_changes:
        count = entry.identifier_count()
        received += count
        if entry.timestamp is not None and entry.timestamp < cutoff:
            dropped += count
        else:
            accepted.extend(entry.changes())
    cohort = dict(workspace_id=workspace_id, partner=partner, cohort_id=body.cohort_id, request_id=request_id)
    # Validated as one document: one pass in pydantic-core over the rows.
    changes = CohortChangesAccepted.model_validate({**cohort, "accepted_at": now, "changes": accepted}) if accepted else None
    return CohortImport(
        received=CohortChangesReceived(**cohort, received=received, dropped_pre_2010=dropped, received_at=now),
        accepted=changes,
    )
