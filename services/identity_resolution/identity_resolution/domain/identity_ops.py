"""How profiles come to exist, change and go (SPEC §2 profile identity API, §3 merges);
applied to a book loaded by `adapters/book_store.py`.

- track: a new external ID creates an identified profile, a new device ID an anonymous one,
  a new alias an alias-only one (none of them with `update_existing_only`); a known one, or a
  `braze_id` (the internal user ID), is a touch. The attributes given are kept as their latest
  values; identity.profiles hears of a profile only when it is created or a value changed.
- alias/new: adds an alias to the profile of `external_id`, or creates an alias-only profile.
- identify: an alias-only or anonymous profile gets an external ID; a new one makes it
  identified (its devices then no longer match), an existing one merges it into that profile.
- merge: the kept profile receives the merged one's aliases and devices, and the attributes it
  has no value of; the merged profile and its external ID disappear.
- delete: the profile and every identifier pointing to it disappear.
Whenever an identifier starts naming a profile, the changes parked for it are applied.
Entries naming unknown or bogus identifiers are skipped and counted, never an error; each
skipped entry is reported by its index among the request's entries, lists in the order of
the request's fields (identify: aliases_to_identify, then devices_to_identify; delete:
external_ids, user_aliases, device_ids, braze_ids).
"""

from __future__ import annotations

from cohort_shared.schemas import (
    AliasRequested,
    DeleteRequested,
    Identifier,
    IdentifyRequested,
    MergeRequested,
    ProfileDeleted,
    ProfileMergeAnnounced,
    ProfilesMerged,
    TrackedUser,
    TrackRequested,
)
from cohort_shared.topics import IDENTITY_MERGES, IDENTITY_PROFILES

from .book import Book, CreatedAs, Profile
from .effects import Applied, Clock
from .identifiers import (
    UNKNOWN_REASON,
    UserRef,
    alias_key,
    as_identifier,
    derive_user_id,
    is_bogus,
    is_bogus_identifier,
    ref_of,
)
from .matching import drain_parked

IdentityRequest = TrackRequested | AliasRequested | IdentifyRequested | MergeRequested | DeleteRequested


def apply_identity_request(book: Book, request: IdentityRequest, clock: Clock) -> Applied:
    """Apply every entry of one profile identity request, in order."""
    applied = Applied()
    if isinstance(request, TrackRequested):
        _track(book, request, clock, applied)
    elif isinstance(request, AliasRequested):
        _alias(book, request, clock, applied)
    elif isinstance(request, IdentifyRequested):
        _identify(book, request, clock, applied)
    elif isinstance(request, MergeRequested):
        _merge_all(book, request, clock, applied)
    else:
        _delete(book, request, clock, applied)
    return applied


def _track(book: Book, request: TrackRequested, clock: Clock, applied: Applied) -> None:
    for index, user in enumerate(request.attributes):
        applied.entry = index
        if user.braze_id is not None:  # names an existing profile; never creates one
            profile = book.profiles.get(user.braze_id)
            if profile is None:
                applied.skip("unknown_braze_id")
            else:
                _set_attributes(book, profile, user.custom_attributes, clock, applied)
            continue
        identifier = tracked_identifier(user)
        if is_bogus_identifier(identifier):
            applied.skip("invalid_identifier")
            continue
        profile = book.holder(ref_of(identifier))
        if profile is not None:  # a touch, perhaps with new attribute values
            _set_attributes(book, profile, user.custom_attributes, clock, applied)
            continue
        if user.update_existing_only:
            applied.skip(UNKNOWN_REASON[identifier.kind])
            continue
        profile = book.create(derive_user_id(book.workspace_id, request.request_id, index), CREATED_AS[identifier.kind])
        if identifier.kind == "external_id":
            book.set_external_id(profile, identifier.value)
        elif identifier.kind == "device_id":
            book.add_device(profile, identifier.value)
        else:
            book.add_alias(profile, alias_key(identifier.label or "", identifier.value))
        profile.attributes = updated_attributes(profile.attributes, user.custom_attributes)
        _publish(book, profile, clock, applied)
        drain_parked(book, identifier, profile, clock, applied)


CREATED_AS: dict[str, CreatedAs] = {"external_id": "identified", "device_id": "anonymous", "alias": "alias"}


def tracked_identifier(user: TrackedUser) -> Identifier:
    """The identifier a users/track object names its profile by (not a braze_id)."""
    if user.external_id is not None:
        return Identifier(kind="external_id", value=user.external_id)
    if user.user_alias is not None:
        return Identifier(kind="alias", value=user.user_alias.alias_name, label=user.user_alias.alias_label)
    return Identifier(kind="device_id", value=user.device_id or "")


def updated_attributes(current: dict, given: dict) -> dict:
    """Each given attribute's latest value; null removes the attribute (as Braze does)."""
    result = dict(current)
    for name, value in given.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _set_attributes(book: Book, profile: Profile, given: dict, clock: Clock, applied: Applied) -> None:
    """Keep the latest values; identity.profiles hears of the profile only if one changed."""
    attributes = updated_attributes(profile.attributes, given)
    if attributes != profile.attributes:
        profile.attributes = attributes
        _publish(book, profile, clock, applied)


def _alias(book: Book, request: AliasRequested, clock: Clock, applied: Applied) -> None:
    for index, entry in enumerate(request.user_aliases):
        applied.entry = index
        identifier = Identifier(kind="alias", value=entry.alias_name, label=entry.alias_label)
        if is_bogus_identifier(identifier) or (entry.external_id is not None and is_bogus(entry.external_id)):
            applied.skip("invalid_identifier")
            continue
        key = alias_key(entry.alias_label, entry.alias_name)
        holder_id = book.aliases.get(key)
        if entry.external_id is None:
            if holder_id is not None:
                continue  # a touch
            profile = book.create(derive_user_id(book.workspace_id, request.request_id, index), "alias")
        else:
            owner_id = book.external_ids.get(entry.external_id)
            if owner_id is None:
                applied.skip("unknown_external_id")
                continue
            if holder_id == owner_id:
                continue  # a touch
            if holder_id is not None:
                applied.skip("alias_of_other_user")
                continue
            profile = book.profiles[owner_id]
        book.add_alias(profile, key)
        _publish(book, profile, clock, applied)
        drain_parked(book, identifier, profile, clock, applied)


def _identify(book: Book, request: IdentifyRequested, clock: Clock, applied: Applied) -> None:
    entries = [
        (Identifier(kind="alias", value=e.user_alias.alias_name, label=e.user_alias.alias_label), e.external_id)
        for e in request.aliases_to_identify
    ] + [(Identifier(kind="device_id", value=e.device_id), e.external_id) for e in request.devices_to_identify]
    for index, (named, external_id) in enumerate(entries):
        applied.entry = index
        if is_bogus_identifier(named) or is_bogus(external_id):
            applied.skip("invalid_identifier")
            continue
        profile = book.holder(ref_of(named))
        if profile is None:
            applied.skip(UNKNOWN_REASON[named.kind])
            continue
        if profile.external_id == external_id:
            continue  # a touch
        if profile.identified:
            applied.skip("already_identified")
            continue
        owner_id = book.external_ids.get(external_id)
        if owner_id is None:
            book.set_external_id(profile, external_id)
            _publish(book, profile, clock, applied)
            drain_parked(book, Identifier(kind="external_id", value=external_id), profile, clock, applied)
        else:
            _merge(book, profile, book.profiles[owner_id], f"{request.request_id}:{index}", clock, applied)


def _merge_all(book: Book, request: MergeRequested, clock: Clock, applied: Applied) -> None:
    for index, update in enumerate(request.merge_updates):
        applied.entry = index
        to_merge, to_keep = as_identifier(update.identifier_to_merge), as_identifier(update.identifier_to_keep)
        if is_bogus_identifier(to_merge) or is_bogus_identifier(to_keep):
            applied.skip("invalid_identifier")
            continue
        merged, kept = book.holder(ref_of(to_merge)), book.holder(ref_of(to_keep))
        if merged is None or kept is None:
            applied.skip(UNKNOWN_REASON[(to_merge if merged is None else to_keep).kind])
            continue
        if merged is kept:
            applied.skip("same_profile")
            continue
        _merge(book, merged, kept, f"{request.request_id}:{index}", clock, applied)


def _merge(book: Book, merged: Profile, kept: Profile, source_id: str, clock: Clock, applied: Applied) -> None:
    """`kept` receives `merged`'s aliases, devices and the attributes it lacks (as Braze merges
    fields); `merged` and its external ID disappear."""
    for key in merged.aliases:
        book.add_alias(kept, key)
    for device_id in merged.devices:
        book.add_device(kept, device_id)
    gained = {name: value for name, value in merged.attributes.items() if name not in kept.attributes}
    kept.attributes = {**kept.attributes, **gained}
    if merged.external_id is not None:
        book.external_ids.pop(merged.external_id, None)
    book.profiles.pop(merged.user_id, None)
    applied.emit(IDENTITY_MERGES, kept.user_id, ProfileMergeAnnounced(
        workspace_id=book.workspace_id, kept_user_id=kept.user_id, merged_user_id=merged.user_id, source_id=source_id))
    applied.emit(
        IDENTITY_MERGES,
        merged.user_id,
        ProfilesMerged(
            workspace_id=book.workspace_id,
            merged_user_id=merged.user_id,
            merged_external_id=merged.external_id,
            kept_user_id=kept.user_id,
            kept_external_id=kept.external_id,
            source_id=source_id,
            merged_at=clock.now,
        ),
    )
    if merged.aliases or merged.devices or gained:
        _publish(book, kept, clock, applied)
    applied.emit(IDENTITY_PROFILES, merged.user_id, None)


def _delete(book: Book, request: DeleteRequested, clock: Clock, applied: Applied) -> None:
    named = (
        [ref_of(Identifier(kind="external_id", value=v)) for v in request.external_ids]
        + [ref_of(Identifier(kind="alias", value=a.alias_name, label=a.alias_label)) for a in request.user_aliases]
        + [ref_of(Identifier(kind="device_id", value=v)) for v in request.device_ids]
        + [UserRef("user_id", v) for v in request.braze_ids]
    )
    for index, ref in enumerate(named):
        applied.entry = index
        if ref.kind != "user_id" and is_bogus_identifier(Identifier(kind=ref.kind, value=ref.value, label=ref.label)):
            applied.skip("invalid_identifier")
            continue
        profile = book.holder(ref)
        if profile is None:
            applied.skip(UNKNOWN_REASON[ref.kind])
            continue
        book.remove(profile)
        deleted = ProfileDeleted(
            workspace_id=book.workspace_id,
            user_id=profile.user_id,
            external_id=profile.external_id,
            source_id=f"{request.request_id}:{index}",
            deleted_at=clock.now,
        )
        applied.emit(IDENTITY_MERGES, profile.user_id, deleted)
        applied.emit(IDENTITY_PROFILES, profile.user_id, None)


def _publish(book: Book, profile: Profile, clock: Clock, applied: Applied) -> None:
    applied.emit(IDENTITY_PROFILES, profile.user_id, profile.snapshot(book.workspace_id, clock.now))


def named_identifiers(request: IdentityRequest) -> list[Identifier]:
    """Every identifier `request` names: what a store must load to apply it."""
    if isinstance(request, TrackRequested):
        return [tracked_identifier(u) for u in request.attributes if u.braze_id is None]
    if isinstance(request, AliasRequested):
        named = [Identifier(kind="alias", value=e.alias_name, label=e.alias_label) for e in request.user_aliases]
        return named + [Identifier(kind="external_id", value=e.external_id)
                        for e in request.user_aliases if e.external_id is not None]
    if isinstance(request, IdentifyRequested):
        return ([Identifier(kind="alias", value=e.user_alias.alias_name, label=e.user_alias.alias_label)
                 for e in request.aliases_to_identify]
                + [Identifier(kind="device_id", value=e.device_id) for e in request.devices_to_identify]
                + [Identifier(kind="external_id", value=e.external_id)
                   for e in (*request.aliases_to_identify, *request.devices_to_identify)])
    if isinstance(request, MergeRequested):
        return [as_identifier(n) for u in request.merge_updates for n in (u.identifier_to_merge, u.identifier_to_keep)]
    return ([Identifier(kind="external_id", value=v) for v in request.external_ids]
            + [Identifier(kind="alias", value=a.alias_name, label=a.alias_label) for a in request.user_aliases]
            + [Identifier(kind="device_id", value=v) for v in request.device_ids])


def named_user_ids(request: IdentityRequest) -> list[str]:
    """Internal user IDs (Braze's braze_id) `request` names: profiles a store must load too."""
    if isinstance(request, TrackRequested):
        return [u.braze_id for u in request.attributes if u.braze_id is not None]
    if isinstance(request, DeleteRequested):
        return list(request.braze_ids)
    return []
