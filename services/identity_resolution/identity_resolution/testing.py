"""For tests: build input records tersely, and summarize outputs as tuples, so that the rule
table (`services/identity_resolution/tests/rule_table.py`) reads like the rules. The same
table drives the pure Python rules and the book store on a real Redis.

Outputs are summarized as tuples:
  ("resolved", cohort, change, identifier, user, external_id)         matched at once
  ("drained", cohort, change, identifier, user, external_id, source)  parked, applied now
  ("parked", cohort, change, identifier, reason)                      unmatched, parked
  ("unmatched", cohort, change, identifier, reason)                   unmatched, not parked
  ("profile", user, external_id, aliases, devices)                    identity.profiles
  ("tombstone", user) / ("merged", merged_user, kept_user) / ("deleted", user)
A merge's announcement (keyed by the kept user) is checked to come before the merge itself
and is not summarized apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from cohort_shared.kafka import make_producer
from cohort_shared.schemas import (
    Alias,
    AliasRequested,
    AliasToIdentify,
    CohortChange,
    CohortChangesAccepted,
    DeleteRequested,
    DeviceToIdentify,
    Identifier,
    IdentifyRequested,
    MembershipResolved,
    MembershipResolvedBatch,
    MembershipUnmatched,
    MembershipUnmatchedBatch,
    MergeRequested,
    MergeUpdate,
    Message,
    NewAlias,
    ProfileDeleted,
    ProfileIdentifier,
    ProfileMergeAnnounced,
    ProfilesMerged,
    ProfileUpdated,
    TrackedUser,
    TrackRequested,
    cohort_key,
    decode,
)
from cohort_shared.settings import CommonSettings
from cohort_shared.topics import MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED, Topics

from identity_resolution.domain.book import Profile
from identity_resolution.domain.effects import Clock, Emitted
from identity_resolution.domain.identifiers import alias_from_key, derive_user_id, sort_key

WS = "acme"
PARTNER = "mixpanel"
T0 = datetime(2026, 1, 21, 14, 20, 30, 123000, tzinfo=UTC)
WINDOW = 86400


def user(request_id: str, index: int = 0) -> str:
    return derive_user_id(WS, request_id, index)


def clock(after_seconds: int = 0) -> Clock:
    return Clock(T0 + timedelta(seconds=after_seconds), WINDOW)


# ---------------------------------------------------------------- building inputs


def E(value: str) -> Identifier:
    return Identifier(kind="external_id", value=value)


def A(label: str, name: str) -> Identifier:
    return Identifier(kind="alias", value=name, label=label)


def D(value: str) -> Identifier:
    return Identifier(kind="device_id", value=value)


def _named(identifier: Identifier) -> ProfileIdentifier:
    if identifier.kind == "alias":
        return ProfileIdentifier(user_alias=Alias(alias_name=identifier.value, alias_label=identifier.label or ""))
    return ProfileIdentifier(**{identifier.kind: identifier.value})


def _stamp(request_id: str) -> dict:
    return {"workspace_id": WS, "request_id": request_id, "requested_at": T0}


def track(request_id: str, *identifiers: Identifier) -> TrackRequested:
    return TrackRequested(**_stamp(request_id), attributes=[TrackedUser(**{i.kind: i.value}) for i in identifiers])


def alias_new(request_id: str, *entries: tuple[str, str, str | None]) -> AliasRequested:
    """entries: (alias_label, alias_name, external_id or None)."""
    return AliasRequested(
        **_stamp(request_id),
        user_aliases=[NewAlias(alias_label=label, alias_name=n, external_id=e) for label, n, e in entries],
    )


def identify(request_id: str, aliases=(), devices=()) -> IdentifyRequested:
    """aliases: (external_id, alias_label, alias_name); devices: (external_id, device_id)."""
    return IdentifyRequested(
        **_stamp(request_id),
        aliases_to_identify=[
            AliasToIdentify(external_id=e, user_alias=Alias(alias_label=label, alias_name=n)) for e, label, n in aliases
        ],
        devices_to_identify=[DeviceToIdentify(external_id=e, device_id=d) for e, d in devices],
    )


def merge(request_id: str, *pairs: tuple[Identifier, Identifier]) -> MergeRequested:
    """pairs: (identifier_to_merge, identifier_to_keep)."""
    return MergeRequested(
        **_stamp(request_id),
        merge_updates=[MergeUpdate(identifier_to_merge=_named(m), identifier_to_keep=_named(k)) for m, k in pairs],
    )


def delete(request_id: str, *identifiers: Identifier) -> DeleteRequested:
    return DeleteRequested(
        **_stamp(request_id),
        external_ids=[i.value for i in identifiers if i.kind == "external_id"],
        user_aliases=[Alias(alias_name=i.value, alias_label=i.label or "") for i in identifiers if i.kind == "alias"],
        device_ids=[i.value for i in identifiers if i.kind == "device_id"],
    )


def add(identifier: Identifier) -> CohortChange:
    return CohortChange(identifier.kind, identifier.value, identifier.label)


def remove(identifier: Identifier) -> CohortChange:
    return CohortChange(identifier.kind, identifier.value, identifier.label, should_remove=True)


def cohort(request_id: str, *changes: CohortChange, cohort_id: str = "c1") -> CohortChangesAccepted:
    return CohortChangesAccepted(
        workspace_id=WS, partner=PARTNER, cohort_id=cohort_id, request_id=request_id, accepted_at=T0,
        changes=list(changes),
    )


# ---------------------------------------------------------------- summarizing outputs


def ident(identifier: Identifier) -> str:
    if identifier.kind == "alias":
        return f"alias:{identifier.label}:{identifier.value}"
    return f"{'ext' if identifier.kind == 'external_id' else 'dev'}:{identifier.value}"


def profile_summary(user_id: str, external_id, aliases, devices) -> tuple:
    return ("profile", user_id, external_id, tuple(f"{a.alias_label}:{a.alias_name}" for a in aliases), tuple(devices))


def summarize_profile(profile: Profile | None) -> tuple | None:
    if profile is None:
        return None
    aliases = [alias_from_key(k) for k in sorted(profile.aliases, key=sort_key)]
    return profile_summary(profile.user_id, profile.external_id, aliases, sorted(profile.devices, key=sort_key))


def summarize(emitted: list[Emitted]) -> list[tuple]:
    """One tuple per output, checking on the way that each is keyed as docs/asyncapi.yaml says."""
    out = []
    announced: set[tuple[str, str]] = set()
    for e in emitted:
        m: Message | None = e.message
        if m is None:
            assert e.topic == "identity.profiles"
            out.append(("tombstone", e.key))
        elif isinstance(m, MembershipResolved):
            assert (e.topic, e.key) == ("membership.resolved", m.user_id)
            if m.was_parked:
                out.append(("drained", m.cohort_id, m.change, ident(m.identifier), m.user_id, m.external_id, m.source_id))
            else:
                out.append(("resolved", m.cohort_id, m.change, ident(m.identifier), m.user_id, m.external_id))
        elif isinstance(m, MembershipUnmatched):
            assert (e.topic, e.key) == ("membership.unmatched", cohort_key(m.workspace_id, m.partner, m.cohort_id).decode())
            kind = "parked" if m.parked_until is not None else "unmatched"
            out.append((kind, m.cohort_id, m.change, ident(m.identifier), m.reason))
        elif isinstance(m, ProfileUpdated):
            assert (e.topic, e.key) == ("identity.profiles", m.user_id)
            assert m.identified == (m.external_id is not None)
            out.append(profile_summary(m.user_id, m.external_id, m.aliases, m.device_ids))
        elif isinstance(m, ProfilesMerged):
            assert (e.topic, e.key) == ("identity.merges", m.merged_user_id)
            assert (m.merged_user_id, m.kept_user_id) in announced, "a merge must be announced first"
            out.append(("merged", m.merged_user_id, m.kept_user_id))
        elif isinstance(m, ProfileMergeAnnounced):
            assert (e.topic, e.key) == ("identity.merges", m.kept_user_id)
            announced.add((m.merged_user_id, m.kept_user_id))
        elif isinstance(m, ProfileDeleted):
            assert (e.topic, e.key) == ("identity.merges", m.user_id)
            out.append(("deleted", m.user_id))
        else:  # pragma: no cover
            raise AssertionError(f"unexpected output {e}")
    return out


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Step:
    message: Message
    expect: list[tuple] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    after_seconds: int = 0


@dataclass(frozen=True)
class Scenario:
    rule: str
    steps: list[Step]
    lookups: dict[str, tuple | None] = field(default_factory=dict)


def P(user_id: str, external_id: str | None = None, aliases=(), devices=()) -> tuple:
    return ("profile", user_id, external_id, tuple(aliases), tuple(devices))


# ---------------------------------------------------------------- on the real broker

_APPLIED_AT = ("resolved_at", "updated_at", "merged_at", "deleted_at")


def canonical(base_topic: str, key: str, message: Message | bytes | None) -> tuple:
    """An output with the times it was applied at left out (`parked_until` reduced to whether
    it is set), so runs at different moments, and the Python rules, compare equal. A change
    (resolved or unmatched) is reduced to what its batch row carries."""
    if message is None:
        return (base_topic, key, None)
    if isinstance(message, bytes):
        message = decode(base_topic, message)
    if isinstance(message, MembershipResolved):
        return (MEMBERSHIP_RESOLVED, message.user_id, (
            message.workspace_id, message.partner, message.cohort_id, message.user_id, message.external_id,
            message.change, message.source_id, message.was_parked))
    if isinstance(message, MembershipUnmatched):
        i = message.identifier
        return (MEMBERSHIP_UNMATCHED, key, (
            message.workspace_id, message.partner, message.cohort_id, i.kind, i.value, i.label, message.change,
            message.reason, message.source_id, message.parked_until is not None))
    fields = message.model_dump(mode="json")
    for name in _APPLIED_AT:
        fields.pop(name, None)
    if "parked_until" in fields:
        fields["parked_until"] = fields["parked_until"] is not None
    return (base_topic, key, orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode())


def input_topic(topics: Topics, message: Message) -> str:
    return topics.cohort_changes if isinstance(message, CohortChangesAccepted) else topics.identity_events


async def publish(settings: CommonSettings, messages: Iterable[Message | tuple[str, bytes, bytes]]) -> None:
    """Publish input records as ingest does (each to its topic, keyed by its model); a
    `(topic, key, raw bytes)` tuple publishes raw bytes, e.g. a poison record."""
    producer = make_producer(settings)
    await producer.start()
    try:
        for message in messages:
            if isinstance(message, tuple):
                topic, key, value = message
                await producer.send(topic, value, key=key)
            else:
                await producer.send(input_topic(settings.topics, message), message.to_bytes(), key=message.kafka_key())
        await producer.flush()
    finally:
        await producer.stop()


def load_rule_table():
    """The scenarios of `services/identity_resolution/tests/rule_table.py`, by path: both the
    unit and the integration tests read them, and neither directory is a package."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tests" / "rule_table.py"
    spec = importlib.util.spec_from_file_location("identity_resolution_rule_table", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SCENARIOS


def canonical_rows(base_topic: str, record) -> list[tuple]:
    """The outputs a published record stands for, each as `canonical` gives it: a batch is one
    per row (and must sit on its users' partition); any other record is itself."""
    value = record.value
    if value is None:
        return [canonical(base_topic, record.key.decode(), None)]
    message = decode(base_topic, value)
    if isinstance(message, MembershipResolvedBatch):
        ws = message.workspace_id
        return [(MEMBERSHIP_RESOLVED, user_id, (ws, partner, cohort_id, user_id, ext, change, source, parked))
                for partner, cohort_id, user_id, ext, change, source, _, parked in message.rows]
    if isinstance(message, MembershipUnmatchedBatch):
        key = cohort_key(message.workspace_id, message.partner, message.cohort_id).decode()
        return [(MEMBERSHIP_UNMATCHED, key, (message.workspace_id, message.partner, message.cohort_id, kind, v, label,
                                             change, reason, source, until is not None))
                for kind, v, label, change, reason, source, until in message.rows]
    return [canonical(base_topic, record.key.decode(), message)]


async def read_rows(settings: CommonSettings, base_topic: str, expected: int, *, timeout: float = 30.0,
                    settle: float = 0.0) -> list:
    """Read `base_topic` from the start until it holds `expected` outputs (batch rows count
    one each), then `settle` seconds more; the records as read."""
    import time

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(settings.topics.name(base_topic), bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed", group_id=None)
    await consumer.start()
    records, count = [], 0
    try:
        deadline = time.monotonic() + timeout
        while count < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    records.append(record)
                    count += len(canonical_rows(base_topic, record))
        until = time.monotonic() + settle
        while time.monotonic() < until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records
