"""The matching rules of docs/matching.md, in one place:

- bogus identifiers ("null", "undefined", …) are unmatched `invalid_identifier`, never parked;
- identified profiles match by external ID; every profile, alias-only ones too, by alias;
- anonymous profiles match by device ID; a device held by an identified profile is
  unmatched `device_id_of_identified_user`, never parked;
- an unknown identifier is unmatched (`unknown_external_id`, `unknown_alias`,
  `unknown_device_id`) and parked per identifier and cohort, a later change replacing the
  earlier one, until the identity appears (then applied, `was_parked`) or the window ends;
- a workspace parks at most `Clock.max_parked` changes: beyond it a new one is unmatched
  `parking_full` and not parked (a replacement of a parked one still is).
Cohort import never creates a profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from cohort_shared.schemas import (
    CohortChange,
    CohortChangesAccepted,
    Identifier,
    IdentifierLike,
    MembershipResolved,
    MembershipUnmatched,
    UnmatchedReason,
    cohort_key,
)
from cohort_shared.topics import MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED

from .book import Book, ParkedChange, Profile, cohort_field, park_key
from .effects import Applied, Clock
from .identifiers import alias_key, is_bogus_identifier, sort_key

PARKABLE: frozenset[str] = frozenset({"unknown_external_id", "unknown_alias", "unknown_device_id"})


class Match(NamedTuple):
    """A matched profile, or the reason there is none. (A named tuple: one is built per change
    resolved, a third of a frozen dataclass's cost.)"""

    profile: Profile | None
    reason: UnmatchedReason | None = None


def match(book: Book, identifier: IdentifierLike) -> Match:
    """Which profile a cohort change's identifier names, by the rules above."""
    if is_bogus_identifier(identifier):
        return Match(None, "invalid_identifier")
    if identifier.kind == "external_id":
        user_id, unknown = book.external_ids.get(identifier.value), "unknown_external_id"
    elif identifier.kind == "alias":
        user_id, unknown = book.aliases.get(alias_key(identifier.label or "", identifier.value)), "unknown_alias"
    else:
        user_id, unknown = book.devices.get(identifier.value), "unknown_device_id"
    profile = book.profiles.get(user_id) if user_id else None
    if profile is None:
        return Match(None, unknown)
    if identifier.kind == "device_id" and profile.identified:
        return Match(None, "device_id_of_identified_user")
    return Match(profile)


def resolve_cohort_changes(book: Book, accepted: CohortChangesAccepted, clock: Clock,
                           indexed: Iterable[tuple[int, CohortChange]] | None = None) -> Applied:
    """Resolve the changes of one producer request, in order: all of them, or those of
    `indexed` ((index in the request, change), as forwarded to the book's owner)."""
    applied = Applied()
    live = book.live_parked(clock.now_bucket)
    for index, change in indexed if indexed is not None else enumerate(accepted.changes):
        identifier = change.identifier()
        parked = ParkedChange(
            partner=accepted.partner,
            cohort_id=accepted.cohort_id,
            change="remove" if change.should_remove else "add",
            identifier=identifier,
            source_id=f"{accepted.request_id}:{index}",
            accepted_at=accepted.accepted_at,
            until_ms=clock.park_until_ms,
        )
        found = match(book, identifier)
        if found.profile is not None:
            _emit_resolved(book, applied, parked, found.profile, clock, was_parked=False)
            applied.tally.resolved += 1
            continue
        reason = found.reason or "invalid_identifier"
        parkable = reason in PARKABLE
        if parkable:
            waiting = book.parked.setdefault(park_key(identifier), {})
            field = cohort_field(parked.partner, parked.cohort_id)
            earlier = waiting.get(field)
            if earlier is None and live >= clock.max_parked:
                reason, parkable = "parking_full", False
            else:
                if earlier is not None:
                    book.count_parked(earlier.until_ms, -1, clock.now_bucket)
                else:
                    live += 1
                waiting[field] = parked
                book.count_parked(parked.until_ms, 1, clock.now_bucket)
                applied.tally.parked += 1
        applied.tally.unmatched[reason] += 1
        unmatched = MembershipUnmatched(
            workspace_id=book.workspace_id,
            partner=parked.partner,
            cohort_id=parked.cohort_id,
            change=parked.change,
            identifier=parked.identifier,
            reason=reason,
            source_id=parked.source_id,
            accepted_at=parked.accepted_at,
            parked_until=clock.park_until if parkable else None,
        )
        applied.emit(MEMBERSHIP_UNMATCHED, cohort_key(book.workspace_id, parked.partner, parked.cohort_id).decode(), unmatched)
    applied.tally.parked_now = book.live_parked(clock.now_bucket)
    return applied


def drain_parked(book: Book, identifier: Identifier, profile: Profile, clock: Clock, applied: Applied) -> None:
    """`identifier` now names `profile`: apply the changes parked for it, cohort by cohort,
    except those whose window has passed."""
    waiting = book.parked.pop(park_key(identifier), {})
    for field in sorted(waiting, key=sort_key):
        parked = waiting[field]
        book.count_parked(parked.until_ms, -1, clock.now_bucket)
        if parked.until_ms < clock.now_ms:
            continue
        _emit_resolved(book, applied, parked, profile, clock, was_parked=True)
        applied.tally.drained += 1


def _emit_resolved(
    book: Book, applied: Applied, parked: ParkedChange, profile: Profile, clock: Clock, *, was_parked: bool
) -> None:
    resolved = MembershipResolved(
        workspace_id=book.workspace_id,
        partner=parked.partner,
        cohort_id=parked.cohort_id,
        user_id=profile.user_id,
        external_id=profile.external_id,
        change=parked.change,
        identifier=parked.identifier,
        source_id=parked.source_id,
        accepted_at=parked.accepted_at,
        resolved_at=clock.now,
        was_parked=was_parked,
    )
    applied.emit(MEMBERSHIP_RESOLVED, profile.user_id, resolved)
