"""The membership rules of SPEC §4–§5 as pure functions on plain values.

The live rules run inside Redis, one Lua script per input record (adapters/lua/), because
the change, its counters and its event must be one atomic write. This module states the
same rules readably; unit tests pin them down, and an integration test feeds random
sequences to both and holds them equal.

Cross-topic order is not guaranteed (a change resolved before a merge may arrive after it),
so the store remembers every profile that is gone and treats late input deterministically:
- a change for a merged profile is redirected to the profile it was merged into (following
  chains): the identifier that matched it now belongs to the kept profile;
- a change for a deleted profile is ignored and counted `unmatched["profile_deleted"]`;
- a merge or deletion of a profile already gone does nothing;
- a merge into a deleted profile just removes the merged one's memberships.
Profiles (identity.profiles) only feed the index of identifiers and "every profile": a
tombstone drops the profile from both but leaves its memberships to the merge or deletion
that identity.merges carries (it may come later and must still find them); an update for a
merged or deleted profile is ignored, so a late one cannot bring it back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

Cohort = tuple[str, str]
"""(partner, cohort_id)"""

Outcome = Literal["applied", "already_in_state", "profile_deleted"]
DELETED = None
MAX_HOPS = 64


@dataclass(frozen=True)
class Change:
    """One effective change of one user's membership: what `membership.changes` carries."""

    cohort: Cohort
    user_id: str
    change: Literal["added", "removed"]
    cause: Literal["cohort_import", "merge", "delete"]


@dataclass
class Memberships:
    """Members by cohort, cohorts by user, and the profiles that are gone (merged → kept ID, deleted → None)."""

    members: dict[Cohort, set[str]] = field(default_factory=lambda: defaultdict(set))
    cohorts_of: dict[str, set[Cohort]] = field(default_factory=lambda: defaultdict(set))
    gone: dict[str, str | None] = field(default_factory=dict)

    def current(self, user_id: str) -> str | None:
        """Where changes for `user_id` land now: itself, the profile it was merged into, or None if deleted."""
        for _ in range(MAX_HOPS):
            if user_id not in self.gone:
                return user_id
            user_id = self.gone[user_id]
            if user_id is DELETED:
                return None
        return user_id

    def apply_change(self, cohort: Cohort, user_id: str, change: Literal["add", "remove"]) -> tuple[Outcome, list[Change]]:
        """A cohort import's add or remove: effective (an event, a data point) or a no-op."""
        target = self.current(user_id)
        if target is None:
            return "profile_deleted", []
        member = target in self.members[cohort]
        if member == (change == "add"):
            return "already_in_state", []
        if change == "add":
            self._add(cohort, target)
        else:
            self._remove(cohort, target)
        return "applied", [Change(cohort, target, "added" if change == "add" else "removed", "cohort_import")]

    def merge(self, merged: str, kept: str) -> list[Change]:
        """`kept` joins each cohort of `merged` it was not in, then `merged` leaves every cohort."""
        if merged in self.gone:
            return []
        target = self.current(kept)
        if target == merged:
            return []
        moving = sorted(self.cohorts_of.get(merged, ()))
        added = [] if target is None else merge_gains(self.cohorts_of.get(target, set()), moving)
        for cohort in added:
            self._add(cohort, target)
        for cohort in moving:
            self._remove(cohort, merged)
        self.gone[merged] = target
        return [Change(c, target, "added", "merge") for c in added] + [Change(c, merged, "removed", "merge") for c in moving]

    def delete(self, user_id: str) -> list[Change]:
        """The profile leaves every cohort and is gone."""
        if user_id in self.gone:
            return []
        leaving = sorted(self.cohorts_of.get(user_id, ()))
        for cohort in leaving:
            self._remove(cohort, user_id)
        self.gone[user_id] = DELETED
        return [Change(c, user_id, "removed", "delete") for c in leaving]

    def _add(self, cohort: Cohort, user_id: str) -> None:
        self.members[cohort].add(user_id)
        self.cohorts_of[user_id].add(cohort)

    def _remove(self, cohort: Cohort, user_id: str) -> None:
        self.members[cohort].discard(user_id)
        self.cohorts_of[user_id].discard(cohort)


def merge_gains(kept_cohorts: set[Cohort], merged_cohorts: list[Cohort]) -> list[Cohort]:
    """The cohorts a merge adds the kept profile to: the merged one's, where it is not yet a member."""
    return [cohort for cohort in merged_cohorts if cohort not in kept_cohorts]
