"""One pydantic model per message on every topic (docs/overview.md, docs/events.md).

Every model is frozen and knows its own Kafka key (`kafka_key`), so the key that carries
order is chosen here, once. Internal topics may gain optional fields (readers ignore
unknown ones); a breaking change is a new `type`. The public `membership.changes` event
carries exactly the fields of docs/events.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

WORKSPACE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PARTNER_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
MAX_IDENTIFIER_LENGTH = 512

WorkspaceId = Annotated[str, Field(pattern=WORKSPACE_PATTERN, description="operator-chosen workspace name")]
Partner = Annotated[str, Field(pattern=PARTNER_PATTERN, description="analytics partner, e.g. mixpanel")]
CohortId = Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)]
UserId = Annotated[str, Field(min_length=1, max_length=64, description="internal user ID, unique across workspaces")]
IdentifierValue = Annotated[str, Field(max_length=MAX_IDENTIFIER_LENGTH)]
SourceId = Annotated[str, Field(min_length=1, description="stable ID of the input this message derives from")]

MembershipChange = Literal["add", "remove"]
UnmatchedReason = Literal[
    "unknown_external_id",
    "unknown_alias",
    "unknown_device_id",
    "device_id_of_identified_user",
    "invalid_identifier",
    "parking_full",
]


class Message(BaseModel):
    """Base of every message: immutable, unknown fields ignored so producers may add optional ones."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def kafka_key(self) -> bytes:  # pragma: no cover - every concrete message overrides it
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        # pydantic-core writes the JSON itself: the same bytes as orjson over model_dump(mode="json")
        # (checked for every example message), without building the dict of dicts in between.
        return self.model_dump_json().encode()


def cohort_key(workspace_id: str, partner: str, cohort_id: str) -> bytes:
    """Key of every per-cohort message: keeps all changes of one cohort in order."""
    return f"{workspace_id}\x1f{partner}\x1f{cohort_id}".encode()


# ---------------------------------------------------------------- shared value types


class Alias(BaseModel):
    """A user alias: `alias_label` (e.g. email) plus `alias_name` (e.g. a@x.com)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    alias_name: IdentifierValue
    alias_label: IdentifierValue


IdentifierKind = Literal["external_id", "device_id", "alias"]


class Identifier(BaseModel):
    """One identifier a producer sent: an external ID, a device ID or an alias."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: IdentifierKind
    value: IdentifierValue = Field(description="the external ID, device ID or alias name")
    label: IdentifierValue | None = Field(default=None, description="alias_label; aliases only")

    @model_validator(mode="after")
    def _label_only_for_aliases(self) -> Identifier:
        if (self.kind == "alias") != (self.label is not None):
            raise ValueError("label is required for aliases and forbidden otherwise")
        return self


def exactly_one_of(*fields: str):
    """`json_schema_extra` stating what a model's validator checks: exactly one of `fields`
    is given and not null, the others absent or null."""

    def state(schema: dict) -> None:
        schema["oneOf"] = [
            {"required": [given],
             "properties": {other: ({"not": {"type": "null"}} if other == given else {"type": "null"}) for other in fields}}
            for given in fields
        ]

    return state


def some_list_not_empty(*fields: str):
    """`json_schema_extra` stating what a model's validator checks: at least one of the list
    fields `fields` (all of the model's fields when none are named) holds an entry."""

    def state(schema: dict, model: type[BaseModel]) -> None:
        names = fields or tuple(model.model_fields)
        schema["anyOf"] = [{"required": [name], "properties": {name: {"minItems": 1}}} for name in names]

    return state


def required_in_schema(*fields: str):
    """`json_schema_extra` for fields the model validates even when absent (to give them the
    message the contract prescribes): the document says they are required."""

    def state(schema: dict) -> None:
        schema["required"] = [*schema.get("required", []), *(f for f in fields if f not in schema.get("required", []))]

    return state


class ProfileIdentifier(BaseModel):
    """Names one profile: exactly one of `external_id`, `user_alias`, `device_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid",
                              json_schema_extra=exactly_one_of("external_id", "user_alias", "device_id"))
    external_id: IdentifierValue | None = None
    user_alias: Alias | None = None
    device_id: IdentifierValue | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ProfileIdentifier:
        given = [f for f in ("external_id", "user_alias", "device_id") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of external_id, user_alias, device_id is required")
        return self


# ---------------------------------------------------------------- cohort.changes


class CohortChange(NamedTuple):
    """One identifier entering (`should_remove` false) or leaving a cohort. On the wire a JSON
    array `[kind, value, label, should_remove, timestamp]`: a request's thousand changes
    decode at under half the cost of as many objects. It names its identifier with the fields
    `Identifier` has (`kind`, `value`, `label`), so matching reads it as one."""

    kind: IdentifierKind
    value: IdentifierValue
    label: IdentifierValue | None = None  # alias_label; aliases only
    should_remove: bool = False
    timestamp: AwareDatetime | None = None  # the producer's own stamp

    def identifier(self) -> Identifier:
        return Identifier(kind=self.kind, value=self.value, label=self.label)


IdentifierLike = Identifier | CohortChange
"""What names an identifier by `kind`, `value` and `label`: the model, or a change's row."""


class CohortChangeObject(BaseModel):
    """A change as versions before rows wrote it (`{"identifier": {…}, "should_remove": …,
    "timestamp": …}`): still read, never written."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    identifier: Identifier
    should_remove: bool = False
    timestamp: AwareDatetime | None = None


class CohortChangesAccepted(Message):
    """A producer request's accepted changes, all for one cohort (topic cohort.changes)."""

    type: Literal["cohort_changes_accepted"] = "cohort_changes_accepted"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    request_id: SourceId
    accepted_at: AwareDatetime
    changes: list[CohortChange] | list[CohortChangeObject] = Field(
        union_mode="left_to_right", description="rows; objects in records of earlier versions (read as rows)")

    @model_validator(mode="after")
    def _rows_with_labels_only_for_aliases(self) -> CohortChangesAccepted:
        if self.changes and isinstance(self.changes[0], CohortChangeObject):
            rows = [CohortChange(c.identifier.kind, c.identifier.value, c.identifier.label, c.should_remove,
                                 c.timestamp) for c in self.changes]
            object.__setattr__(self, "changes", rows)
        for index, change in enumerate(self.changes):
            if (change.kind == "alias") != (change.label is not None):
                raise ValueError(f"changes[{index}]: label is required for aliases and forbidden otherwise")
        return self

    def kafka_key(self) -> bytes:
        return cohort_key(self.workspace_id, self.partner, self.cohort_id)


# ---------------------------------------------------------------- cohort.meta


class CohortNamed(Message):
    """A cohort was created or renamed by its producer (topic cohort.meta)."""

    type: Literal["cohort_named"] = "cohort_named"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    name: Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)]
    created_at: AwareDatetime | None = None
    named_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return cohort_key(self.workspace_id, self.partner, self.cohort_id)


class CohortChangesReceived(Message):
    """What one producer request sent, for the sync report (topic cohort.meta).

    Published before the changes themselves, so a report never shows more applied than
    received; a request that then fails still counts as received, as a retry does.
    """

    type: Literal["cohort_changes_received"] = "cohort_changes_received"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    request_id: SourceId
    received: int = Field(ge=0, description="identifiers in the request, dropped ones included")
    dropped_pre_2010: int = Field(ge=0, description="identifiers dropped by the retention cut-off")
    received_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return cohort_key(self.workspace_id, self.partner, self.cohort_id)


CohortMetaMessage = Annotated[CohortNamed | CohortChangesReceived, Field(discriminator="type")]


# ---------------------------------------------------------------- identity.events


AttributeValue = Annotated[
    object, Field(description="a JSON value: string, number, boolean, list or object; null unsets the attribute")
]


TRACKED_BY = ("external_id", "device_id", "user_alias", "braze_id")
"""The fields a users/track object may name its profile by: exactly one of them."""


class TrackedUser(BaseModel):
    """One `users/track` object: an identified user (`external_id`), an anonymous device
    (`device_id`), an alias-only user (`user_alias`) or an existing profile (`braze_id`, the
    internal user ID); with the attributes to keep on it as their latest values."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=exactly_one_of(*TRACKED_BY))
    external_id: IdentifierValue | None = None
    device_id: IdentifierValue | None = None
    user_alias: Alias | None = None
    braze_id: UserId | None = None
    update_existing_only: bool = Field(
        default=False, description="only touch or update a profile that exists; never create one")
    custom_attributes: dict[Annotated[str, Field(min_length=1, max_length=255)], AttributeValue] = Field(
        default_factory=dict, description="attribute name → latest value (null removes it)")

    @model_validator(mode="after")
    def _one_identity(self) -> TrackedUser:
        given = [f for f in TRACKED_BY if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of {', '.join(TRACKED_BY)} is required")
        return self


class NewAlias(BaseModel):
    """One `users/alias/new` entry; without `external_id` it creates an alias-only user."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    external_id: IdentifierValue | None = None
    alias_name: IdentifierValue
    alias_label: IdentifierValue


class AliasToIdentify(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    external_id: IdentifierValue
    user_alias: Alias


class DeviceToIdentify(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    external_id: IdentifierValue
    device_id: IdentifierValue


class MergeUpdate(BaseModel):
    """`identifier_to_merge`'s profile goes into `identifier_to_keep`'s; the two must name different profiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    identifier_to_merge: ProfileIdentifier
    identifier_to_keep: ProfileIdentifier


class _IdentityRequest(Message):
    workspace_id: WorkspaceId
    request_id: SourceId
    requested_at: AwareDatetime

    def kafka_key(self) -> bytes:
        # One workspace's profile operations are applied in the order they were accepted.
        return self.workspace_id.encode()


class TrackRequested(_IdentityRequest):
    """`POST /users/track` accepted."""

    type: Literal["track_requested"] = "track_requested"
    attributes: list[TrackedUser]


class AliasRequested(_IdentityRequest):
    """`POST /users/alias/new` accepted."""

    type: Literal["alias_requested"] = "alias_requested"
    user_aliases: list[NewAlias]


class IdentifyRequested(_IdentityRequest):
    """`POST /users/identify` accepted."""

    type: Literal["identify_requested"] = "identify_requested"
    aliases_to_identify: list[AliasToIdentify] = []
    devices_to_identify: list[DeviceToIdentify] = []


class MergeRequested(_IdentityRequest):
    """`POST /users/merge` accepted."""

    type: Literal["merge_requested"] = "merge_requested"
    merge_updates: list[MergeUpdate]


class DeleteRequested(_IdentityRequest):
    """`POST /users/delete` accepted."""

    type: Literal["delete_requested"] = "delete_requested"
    external_ids: list[IdentifierValue] = []
    user_aliases: list[Alias] = []
    device_ids: list[IdentifierValue] = []
    braze_ids: list[UserId] = Field(default=[], description="internal user IDs (Braze's braze_id)")


IdentityEvent = Annotated[
    TrackRequested | AliasRequested | IdentifyRequested | MergeRequested | DeleteRequested,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- membership.resolved / unmatched


class MembershipResolved(Message):
    """A cohort change matched to a profile (topic membership.resolved, keyed by user)."""

    type: Literal["membership_resolved"] = "membership_resolved"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    user_id: UserId
    external_id: IdentifierValue | None = None
    change: MembershipChange
    identifier: Identifier
    source_id: SourceId
    accepted_at: AwareDatetime
    resolved_at: AwareDatetime
    was_parked: bool = Field(default=False, description="applied late, once its identity appeared")

    def kafka_key(self) -> bytes:
        return self.user_id.encode()


class MembershipUnmatched(Message):
    """A cohort change no profile matched, with the reason (topic membership.unmatched)."""

    type: Literal["membership_unmatched"] = "membership_unmatched"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    change: MembershipChange
    identifier: Identifier
    reason: UnmatchedReason
    source_id: SourceId
    accepted_at: AwareDatetime
    parked_until: AwareDatetime | None = Field(default=None, description="applied if the identity appears by then")

    def kafka_key(self) -> bytes:
        return cohort_key(self.workspace_id, self.partner, self.cohort_id)


# ---------------------------------------------------------------- batches (internal topics)
# The hot path carries one record per partition-batch, not one per change: a row per change,
# as a tuple, so a million changes cost a few thousand records and no model per change.

ResolvedRow = tuple[
    Partner, CohortId, UserId, IdentifierValue | None, MembershipChange, SourceId, int, bool
]
"""partner, cohort_id, user_id, external_id (or None), change, source_id, accepted_at (epoch ms),
was_parked (applied late, once its identity appeared)."""


class MembershipResolvedBatch(Message):
    """Cohort changes matched to profiles, all of one workspace, all for users of the
    partition this record is on (topic membership.resolved, sent to that partition)."""

    type: Literal["membership_resolved_batch"] = "membership_resolved_batch"
    workspace_id: WorkspaceId
    resolved_at: AwareDatetime
    rows: list[ResolvedRow] = Field(description="one row per change, in the order they were accepted")

    def kafka_key(self) -> bytes:
        return self.workspace_id.encode()


UnmatchedRow = tuple[
    Literal["external_id", "device_id", "alias"], IdentifierValue, IdentifierValue | None, MembershipChange,
    UnmatchedReason, SourceId, int | None
]
"""identifier kind, value, alias label (or None), change, reason, source_id, parked_until (epoch
ms, or None when not parked)."""


class MembershipUnmatchedBatch(Message):
    """Cohort changes no profile matched, with each reason (topic membership.unmatched)."""

    type: Literal["membership_unmatched_batch"] = "membership_unmatched_batch"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    accepted_at: AwareDatetime
    rows: list[UnmatchedRow]

    def kafka_key(self) -> bytes:
        return cohort_key(self.workspace_id, self.partner, self.cohort_id)


ForwardedRow = tuple[int, Literal["external_id", "device_id", "alias"], IdentifierValue, IdentifierValue | None, bool]
"""index in the producer's request, identifier kind, value, alias label (or None), should_remove."""


class CohortChangesForwarded(Message):
    """Changes of one producer request that only the workspace's identity book may decide:
    identifiers not known yet (to park) or whose parked changes were just released (to keep
    their order). Internal topic identity.forwarded, keyed by workspace like identity.events."""

    type: Literal["cohort_changes_forwarded"] = "cohort_changes_forwarded"
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    request_id: SourceId
    accepted_at: AwareDatetime
    rows: list[ForwardedRow]

    def kafka_key(self) -> bytes:
        return self.workspace_id.encode()


# ---------------------------------------------------------------- segment.handovers (internal)
# A merge in segment-store runs in the tasks of the two users (each user's events come from
# its own task): the merged profile's task hands its cohorts over, the kept profile's task
# joins them and answers, the merged profile's task then leaves them. Changes that arrive for
# a merged profile are redirected to the kept one the same way.

CohortRef = tuple[Partner, CohortId]


class MembershipsHandedOver(Message):
    """A merged profile's cohorts, for the kept profile to join (keyed by the kept user)."""

    type: Literal["memberships_handed_over"] = "memberships_handed_over"
    workspace_id: WorkspaceId
    merged_user_id: UserId
    merged_external_id: IdentifierValue | None = None
    kept_user_id: UserId
    kept_external_id: IdentifierValue | None = None
    cohorts: list[CohortRef]
    source_id: SourceId
    hops: int = Field(default=0, ge=0, description="profiles passed through: a chain of merges ends")

    def kafka_key(self) -> bytes:
        return self.kept_user_id.encode()


class HandoverCompleted(Message):
    """The kept profile joined: the merged one now leaves those cohorts (keyed by the merged user)."""

    type: Literal["handover_completed"] = "handover_completed"
    workspace_id: WorkspaceId
    merged_user_id: UserId
    merged_external_id: IdentifierValue | None = None
    cohorts: list[CohortRef]
    source_id: SourceId

    def kafka_key(self) -> bytes:
        return self.merged_user_id.encode()


class ChangesRedirected(Message):
    """Changes that arrived for a merged profile, for the profile it was merged into."""

    type: Literal["changes_redirected"] = "changes_redirected"
    workspace_id: WorkspaceId
    user_id: UserId = Field(description="the profile the changes now apply to")
    rows: list[ResolvedRow]
    hops: int = Field(default=0, ge=0, description="profiles passed through: a chain of merges ends")

    def kafka_key(self) -> bytes:
        return self.user_id.encode()


SegmentHandover = Annotated[MembershipsHandedOver | HandoverCompleted | ChangesRedirected,
                            Field(discriminator="type")]


# ---------------------------------------------------------------- identity.merges


class ProfilesMerged(Message):
    """The merged profile's memberships move to the kept one; the merged one is gone."""

    type: Literal["profiles_merged"] = "profiles_merged"
    workspace_id: WorkspaceId
    merged_user_id: UserId
    merged_external_id: IdentifierValue | None = None
    kept_user_id: UserId
    kept_external_id: IdentifierValue | None = None
    source_id: SourceId
    merged_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.merged_user_id.encode()


class ProfileMergeAnnounced(Message):
    """A profile is being merged into this one (keyed by the kept user, on the same partition
    as anything later of it): segment-store holds back a deletion or an onward merge of the
    kept profile until the merged one's cohorts have arrived, as if it were all one step."""

    type: Literal["profile_merge_announced"] = "profile_merge_announced"
    workspace_id: WorkspaceId
    kept_user_id: UserId
    merged_user_id: UserId
    source_id: SourceId

    def kafka_key(self) -> bytes:
        return self.kept_user_id.encode()


class ProfileDeleted(Message):
    """A profile was deleted; its memberships go too."""

    type: Literal["profile_deleted"] = "profile_deleted"
    workspace_id: WorkspaceId
    user_id: UserId
    external_id: IdentifierValue | None = None
    source_id: SourceId
    deleted_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.user_id.encode()


IdentityMergeMessage = Annotated[ProfilesMerged | ProfileMergeAnnounced | ProfileDeleted, Field(discriminator="type")]


# ---------------------------------------------------------------- identity.profiles (compacted)


class ProfileUpdated(Message):
    """A profile's current identifiers (compacted topic; a tombstone, value None, deletes it)."""

    type: Literal["profile_updated"] = "profile_updated"
    workspace_id: WorkspaceId
    user_id: UserId
    external_id: IdentifierValue | None = None
    identified: bool
    aliases: list[Alias] = []
    device_ids: list[IdentifierValue] = []
    custom_attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="attributes other than identifiers, each its latest value")
    updated_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.user_id.encode()


# ---------------------------------------------------------------- membership.changes (public)


class MembershipChanged(Message):
    """The public event: one effective membership change (docs/events.md), keyed by user."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_id: Annotated[str, Field(min_length=1, description="stable: the same change always has the same ID")]
    workspace_id: WorkspaceId
    partner: Partner
    cohort_id: CohortId
    user_id: UserId
    external_id: IdentifierValue | None
    change: Literal["added", "removed"]
    cause: Literal["cohort_import", "merge", "delete"]
    occurred_at: AwareDatetime

    def kafka_key(self) -> bytes:
        return self.user_id.encode()


# ---------------------------------------------------------------- decoding

COHORT_META = TypeAdapter(CohortMetaMessage)
IDENTITY_EVENT = TypeAdapter(IdentityEvent)
IDENTITY_MERGE = TypeAdapter(IdentityMergeMessage)

TOPIC_SCHEMAS: dict[str, TypeAdapter] = {
    "cohort.changes": TypeAdapter(CohortChangesAccepted),
    "cohort.meta": COHORT_META,
    "identity.events": IDENTITY_EVENT,
    "identity.forwarded": TypeAdapter(CohortChangesForwarded),
    "membership.resolved": TypeAdapter(MembershipResolvedBatch),
    "membership.unmatched": TypeAdapter(MembershipUnmatchedBatch),
    "identity.merges": IDENTITY_MERGE,
    "identity.profiles": TypeAdapter(ProfileUpdated),
    "segment.handovers": TypeAdapter(SegmentHandover),
    "membership.changes": TypeAdapter(MembershipChanged),
}
"""The schema of each topic, by its default (unprefixed) name."""


def decode(base_topic: str, value: bytes) -> Message:
    """Parse a record of `base_topic`; raises pydantic.ValidationError on a bad one."""
    return TOPIC_SCHEMAS[base_topic].validate_json(value)


def utc_now() -> datetime:

    return datetime.now(UTC)
