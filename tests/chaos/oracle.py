"""An independent model of docs/matching.md, docs/segments.md, docs/events.md, written from the contract and not from the code under
test: which profile an identifier names, what each change does to a cohort, which change
events a merge or a delete emits, and what a cohort's sync report counts.

Profiles are named by a label, the `user_ref` of the identifier that created them; the run
maps labels to internal user IDs through the identity API once the prelude is applied.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .identifiers import Ident
from .workload import ImportRequest, ProfileOp

Event = tuple[str, str]  # (change, cause)


@dataclass
class ProfileState:
    label: str
    external_id: str | None = None
    aliases: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)

    @property
    def identified(self) -> bool:
        return self.external_id is not None  # docs/matching.md: identified iff it has an external_id


@dataclass
class SyncReport:
    received: int = 0
    applied: int = 0
    already_in_state: int = 0
    unmatched: Counter = field(default_factory=Counter)


class Oracle:
    def __init__(self) -> None:
        self.profiles: dict[str, ProfileState] = {}
        self.tables: dict[str, dict[str, str]] = {"external_id": {}, "alias": {}, "device_id": {}}
        self.members: dict[str, set[str]] = defaultdict(set)
        self.events: dict[tuple[str, str], list[Event]] = defaultdict(list)
        self.reports: dict[str, SyncReport] = defaultdict(SyncReport)

    # -- profiles (docs/producer-api.md profile identity API, docs/matching.md merges) --------------------------------

    def apply_profile_op(self, op: ProfileOp) -> None:
        if op.action in ("track_external", "track_device", "alias_only"):
            if self._holder(op.ident) is None:
                profile = ProfileState(op.ident.ref)
                self.profiles[profile.label] = profile
                self._attach(profile, op.ident)
        elif op.action == "identify_device":
            self._identify(op.other, op.ident.value)
        elif op.action == "merge":
            self.merge(op.ident, op.other)
        elif op.action == "delete":
            self.delete(op.ident)
        else:
            raise ValueError(op.action)

    def _identify(self, named: Ident, external_id: str) -> None:
        profile = self._holder(named)
        if profile is None or profile.identified:
            return
        owner = self.tables["external_id"].get(external_id)
        if owner is None:
            self._attach(profile, Ident("external_id", external_id))
        else:
            self._merge_profiles(profile, self.profiles[owner])

    def merge(self, to_merge: Ident, to_keep: Ident) -> None:
        merged, kept = self._holder(to_merge), self._holder(to_keep)
        if merged is not None and kept is not None and merged is not kept:
            self._merge_profiles(merged, kept)

    def _merge_profiles(self, merged: ProfileState, kept: ProfileState) -> None:
        """The kept profile joins the merged one's cohorts (an `added` where it is new), then the
        merged profile leaves each (a `removed`), then it is gone with its external ID."""
        cohorts = sorted(c for c, m in self.members.items() if merged.label in m)
        for cohort in cohorts:
            if kept.label not in self.members[cohort]:
                self.members[cohort].add(kept.label)
                self.events[(kept.label, cohort)].append(("added", "merge"))
        for cohort in cohorts:
            self.members[cohort].discard(merged.label)
            self.events[(merged.label, cohort)].append(("removed", "merge"))
        for value in merged.aliases:
            self._attach(kept, Ident("alias", value))
        for value in merged.devices:
            self._attach(kept, Ident("device_id", value))
        self._forget(merged)

    def delete(self, ident: Ident) -> None:
        profile = self._holder(ident)
        if profile is None:
            return
        for cohort in sorted(c for c, m in self.members.items() if profile.label in m):
            self.members[cohort].discard(profile.label)
            self.events[(profile.label, cohort)].append(("removed", "delete"))
        self._forget(profile)

    # -- matching (docs/matching.md) and cohort import (§4, §5) --------------------------------------

    def match(self, ident: Ident) -> tuple[str | None, str | None]:
        """(profile label, None) when `ident` names a profile, else (None, unmatched reason)."""
        profile = self._holder(ident)
        if profile is None:
            return None, f"unknown_{ident.kind}"
        if ident.kind == "external_id" and not profile.identified:
            return None, "unknown_external_id"
        if ident.kind == "device_id" and profile.identified:
            return None, "device_id_of_identified_user"
        return profile.label, None

    def apply_import(self, request: ImportRequest) -> None:
        cohort = request.cohort[1]
        report = self.reports[cohort]
        for change in request.changes:
            report.received += 1
            label, reason = self.match(change.ident)
            if label is None:
                report.unmatched[reason] += 1
                continue
            present = label in self.members[cohort]
            if present != change.remove:
                report.already_in_state += 1
                continue
            (self.members[cohort].discard if change.remove else self.members[cohort].add)(label)
            report.applied += 1
            self.events[(label, cohort)].append(("removed" if change.remove else "added", "cohort_import"))

    def request_shape(self, request: ImportRequest) -> tuple[int, Counter]:
        """How many of a request's identifiers match a profile, and the unmatched by reason: what
        one more landing of the same request adds to `already_in_state` and `unmatched`."""
        matched, unmatched = 0, Counter()
        for change in request.changes:
            label, reason = self.match(change.ident)
            if label is None:
                unmatched[reason] += 1
            else:
                matched += 1
        return matched, unmatched

    # -- tables ----------------------------------------------------------------------------

    def _holder(self, ident: Ident) -> ProfileState | None:
        label = self.tables[ident.kind].get(ident.value)
        return self.profiles.get(label) if label else None

    def _attach(self, profile: ProfileState, ident: Ident) -> None:
        self.tables[ident.kind][ident.value] = profile.label
        if ident.kind == "external_id":
            profile.external_id = ident.value
        else:
            (profile.aliases if ident.kind == "alias" else profile.devices).add(ident.value)

    def _forget(self, profile: ProfileState) -> None:
        """Drop the profile and every identifier still naming it (a merge moved some away)."""
        for kind, values in (("alias", profile.aliases), ("device_id", profile.devices)):
            for value in values:
                if self.tables[kind].get(value) == profile.label:
                    del self.tables[kind][value]
        if profile.external_id is not None:
            self.tables["external_id"].pop(profile.external_id, None)
        del self.profiles[profile.label]
