"""The membership rules of docs/segments.md, docs/events.md, on the part of one task's state a batch loaded.

A user's memberships live in the task of the partition its events are keyed to, and only
that task changes them, so every event of a user comes from one place, in order. The rules
below work on a `Slice` (the users one batch touches, with all their cohorts) and record
what they change; `adapters/task_store.py` loads slices and writes the changes back.

- An import's add or remove is *effective* if it changes membership: an event, one applied
  change (a data point); otherwise it counts as already in state.
- Late input is handled deterministically, as cross-topic order is not guaranteed: a change
  for a merged profile goes to the profile it was merged into (forwarded to that profile's
  task, following chains); one for a deleted profile is ignored and counted
  `unmatched["profile_deleted"]`; a merge or deletion of a profile already gone does nothing.
- A merge, in three steps so each user's events come from its own task and the kept
  profile's additions come first (docs/events.md): the merged profile's task marks it gone and hands
  its cohorts over (`Handover`); the kept profile's task adds it where it is not a member yet
  (cause merge, free of data points) and answers (`HandoverDone`); the merged profile's task
  then removes it from those cohorts. A merge into a deleted profile only removes.
- A merge is announced first to the kept profile's task (on the partition of everything later
  of the kept profile): until the cohorts of every profile announced as merged into it have
  arrived, a deletion or an onward merge of the kept profile is held (`Wait`), so the kept
  profile gains them before it goes, as if the merge were one step.
- A deletion removes the profile from every cohort (cause delete, free) and marks it gone.
- Profiles (identity.profiles) only feed the index of identifiers and "every profile": a
  tombstone drops the profile from both but leaves its memberships to the merge or deletion
  identity.merges carries; an update for a merged or deleted profile is ignored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Cohort = tuple[str, str]
"""(partner, cohort_id)"""

DELETED = "d"
TOMBSTONED = "t"
MERGED = "m"


class Change(NamedTuple):
    """One effective change of one user's membership: what `membership.changes` carries.
    (A named tuple, like `ImportedChange`: one or two are built per change applied, at a
    third of a frozen dataclass's cost.)"""

    cohort: Cohort
    user_id: str
    change: Literal["added", "removed"]
    cause: Literal["cohort_import", "merge", "delete"]
    source_id: str


@dataclass(frozen=True)
class Gone:
    """Why a profile no longer takes changes: merged into `kept`, deleted, or tombstoned
    (identity.profiles dropped it; its memberships wait for identity.merges)."""

    why: Literal["m", "d", "t"]
    kept: str | None = None


@dataclass
class Wait:
    """Merges into one profile whose cohorts have not all arrived, and what waits for them."""

    announced: set[str] = field(default_factory=set)  # merged profiles whose cohorts are to come
    early: set[str] = field(default_factory=set)  # cohorts that came before their announcement
    held: list[str] = field(default_factory=list)  # identity.merges messages of this profile, held

    def __bool__(self) -> bool:
        return bool(self.announced or self.early or self.held)


@dataclass
class Slice:
    """What one batch loaded of one workspace in one task, and what the rules changed.

    `cohorts_of` holds every cohort of each loaded user; `gone` the loaded users no longer
    taking changes. The rules fill the journal below; nothing else changes the slice."""

    workspace_id: str
    cohorts_of: dict[str, set[Cohort]] = field(default_factory=dict)
    gone: dict[str, Gone] = field(default_factory=dict)
    waits: dict[str, Wait] = field(default_factory=dict)
    # the journal
    flips: dict[tuple[Cohort, str], bool] = field(default_factory=dict)  # (cohort, user) -> member now
    counters: Counter = field(default_factory=Counter)  # (cohort, field) -> delta
    usage: int = 0
    touched: set[Cohort] = field(default_factory=set)
    gone_now: dict[str, Gone] = field(default_factory=dict)
    waits_now: set[str] = field(default_factory=set)

    def cohorts(self, user_id: str) -> set[Cohort]:
        return self.cohorts_of.setdefault(user_id, set())

    def wait(self, user_id: str) -> Wait:
        """The user's wait, to change (it is written back)."""
        self.waits_now.add(user_id)
        return self.waits.setdefault(user_id, Wait())

    def mark_gone(self, user_id: str, gone: Gone) -> None:
        self.gone[user_id] = self.gone_now[user_id] = gone

    def _set(self, cohort: Cohort, user_id: str, member: bool) -> None:
        (self.cohorts(user_id).add if member else self.cohorts(user_id).discard)(cohort)
        self.flips[cohort, user_id] = member
        self.counters[cohort, "mc"] += 1 if member else -1
        self.touched.add(cohort)


class ImportedChange(NamedTuple):
    """One resolved cohort change (a row of membership.resolved)."""

    cohort: Cohort
    user_id: str
    change: Literal["add", "remove"]
    source_id: str


def apply_import(s: Slice, change: ImportedChange) -> Change | str | None:
    """A cohort import's change: its event if effective; the user it must be forwarded to if
    the profile was merged; None otherwise (counted)."""
    cohort = change.cohort
    s.touched.add(cohort)
    gone = s.gone.get(change.user_id)
    if gone is not None and gone.why == MERGED:
        return gone.kept
    if gone is not None and gone.why == DELETED:
        s.counters[cohort, "u:profile_deleted"] += 1
        return None
    member = cohort in s.cohorts(change.user_id)
    if member == (change.change == "add"):
        s.counters[cohort, "al"] += 1
        return None
    s._set(cohort, change.user_id, not member)
    s.counters[cohort, "ap"] += 1
    s.usage += 1
    return Change(cohort, change.user_id, "added" if not member else "removed", "cohort_import", change.source_id)


def start_merge(s: Slice, merged: str, kept: str) -> list[Cohort] | None:
    """Mark `merged` gone into `kept`; the cohorts to hand over (None if it was gone already)."""
    if merged in s.gone and s.gone[merged].why != TOMBSTONED:
        return None
    s.mark_gone(merged, Gone(MERGED, kept))
    return sorted(s.cohorts(merged))


def receive_handover(s: Slice, kept: str, cohorts: list[Cohort], source_id: str) -> list[Change] | str | None:
    """The kept profile's task: join each handed-over cohort it is not in (cause merge). The
    user to pass the handover on to if `kept` was merged itself; None if it was deleted."""
    gone = s.gone.get(kept)
    if gone is not None and gone.why == MERGED:
        return gone.kept
    if gone is not None and gone.why == DELETED:
        return None
    gains = merge_gains(s.cohorts(kept), cohorts)
    for cohort in gains:
        s._set(cohort, kept, True)
    return [Change(c, kept, "added", "merge", source_id) for c in gains]


def announce_merge(s: Slice, kept: str, merged: str) -> None:
    """`merged` is being merged into `kept`: its cohorts are on their way."""
    wait = s.wait(kept)
    if merged in wait.early:
        wait.early.discard(merged)
    else:
        wait.announced.add(merged)


def hold(s: Slice, user_id: str, message: str) -> bool:
    """Hold a deletion or an onward merge of `user_id` while cohorts merged into it are to come."""
    wait = s.waits.get(user_id)
    if wait is None or not (wait.announced or wait.held):
        return False
    s.wait(user_id).held.append(message)
    return True


def handover_arrived(s: Slice, kept: str, merged: str) -> list[str]:
    """The cohorts of `merged` reached `kept` (and were applied): what `kept` held, now that
    nothing more is to come, to apply next in order."""
    wait = s.wait(kept)
    if merged in wait.announced:
        wait.announced.discard(merged)
    else:
        wait.early.add(merged)
    if wait.announced:
        return []
    released, wait.held = wait.held, []
    return released


def finish_merge(s: Slice, merged: str, cohorts: list[Cohort], source_id: str) -> list[Change]:
    """The merged profile's task, once the kept one joined: leave the handed-over cohorts."""
    leaving = [c for c in cohorts if c in s.cohorts(merged)]
    for cohort in leaving:
        s._set(cohort, merged, False)
    return [Change(c, merged, "removed", "merge", source_id) for c in leaving]


def delete(s: Slice, user_id: str, source_id: str) -> list[Change]:
    """The profile leaves every cohort and is gone."""
    if user_id in s.gone and s.gone[user_id].why != TOMBSTONED:
        return []
    leaving = sorted(s.cohorts(user_id))
    for cohort in leaving:
        s._set(cohort, user_id, False)
    s.mark_gone(user_id, Gone(DELETED))
    return [Change(c, user_id, "removed", "delete", source_id) for c in leaving]


def merge_gains(kept_cohorts: set[Cohort], merged_cohorts: list[Cohort]) -> list[Cohort]:
    """The cohorts a merge adds the kept profile to: the merged one's, where it is not yet a member."""
    return [cohort for cohort in merged_cohorts if cohort not in kept_cohorts]


def accepts_profile_update(s: Slice, user_id: str) -> bool:
    """A late update must not bring back a profile merged or deleted."""
    gone = s.gone.get(user_id)
    return gone is None or gone.why == TOMBSTONED
