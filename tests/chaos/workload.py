"""What one run sends, generated from its seed before anything starts.

Profiles are created first through the operator profile API. STABLE profiles are the only
ones the continuous import names, each always by the same one identifier, so a profile's
membership of a cohort depends on one (identifier, cohort) pair whose changes the producer
keeps in order. VOLATILE profiles get their memberships in a prelude and are then merged
and deleted while the import runs; the import never names them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .identifiers import Ident, alias, device, external
from .profiles import Profile

Cohort = tuple[str, str]  # (partner, cohort_id)


@dataclass(frozen=True)
class ProfileOp:
    """One entry of the profile identity API: track, alias/new, identify, merge or delete."""

    action: str  # track_external | track_device | alias_only | identify_device | merge | delete
    ident: Ident  # the profile it creates, or the one merged or deleted
    other: Ident | None = None  # identify: the device identified; merge: the profile kept


@dataclass(frozen=True)
class Change:
    ident: Ident
    remove: bool


@dataclass(frozen=True)
class ImportRequest:
    """One `POST /partners/{partner}/cohorts/users` request."""

    index: int
    cohort: Cohort
    changes: tuple[Change, ...]

    def pairs(self) -> list[tuple[Ident, str]]:
        return [(c.ident, self.cohort[1]) for c in self.changes]


@dataclass(frozen=True)
class Workload:
    cohorts: list[Cohort]
    profile_ops: list[ProfileOp]  # sent first, in order, and confirmed applied
    stable: list[Ident]  # how the import names each stable profile
    odd: list[Ident]  # unknown identifiers and devices of identified profiles: never matched
    volatile: list[Ident]
    volatile_prelude: list[ImportRequest]  # confirmed applied before any fault
    imports: list[ImportRequest]  # the continuous import, in the order the oracle applies it
    volatile_ops: list[ProfileOp]  # merges and deletes, sent one by one during the import


def build_workload(profile: Profile, rng: random.Random) -> Workload:
    pop = profile.population
    cohorts = [("mixpanel", f"mp_{i}") for i in range(profile.cohorts_mixpanel)]
    cohorts += [("amplitude", f"amp_{i}") for i in range(profile.cohorts_amplitude)]
    identified = [external(f"e{i}") for i in range(pop.identified)]
    alias_only = [alias(f"a{i}@example.com") for i in range(pop.alias_only)]
    anonymous = [device(f"d{i}") for i in range(pop.anonymous)]
    identified_devices = [device(f"xd{i}") for i in range(pop.device_identified)]
    volatile = [external(f"v{i}") for i in range(pop.volatile)]
    ops = [ProfileOp("track_device", d) for d in anonymous + identified_devices]
    ops += [ProfileOp("track_external", e) for e in identified + volatile]
    ops += [ProfileOp("alias_only", a) for a in alias_only]
    ops += [ProfileOp("identify_device", external(f"x{i}"), d) for i, d in enumerate(identified_devices)]
    unknown = [Ident(kind, f"ghost{i}@example.com" if kind == "alias" else f"ghost{i}")
               for i, kind in enumerate(rng.choice(("external_id", "external_id", "alias", "device_id"))
                                        for _ in range(pop.unknown))]
    stable = identified + alias_only + anonymous
    return Workload(
        cohorts=cohorts,
        profile_ops=ops,
        stable=stable,
        odd=unknown + identified_devices,
        volatile=volatile,
        volatile_prelude=_volatile_prelude(volatile, cohorts, rng),
        imports=_continuous_import(profile, cohorts, identified, alias_only + anonymous, unknown + identified_devices,
                                   rng),
        volatile_ops=_volatile_ops(volatile, profile.volatile_ops, rng),
    )


def _volatile_prelude(volatile: list[Ident], cohorts: list[Cohort], rng: random.Random) -> list[ImportRequest]:
    """Each volatile profile joins one to three cohorts."""
    joined: dict[Cohort, list[Ident]] = {c: [] for c in cohorts}
    for ident in volatile:
        for cohort in rng.sample(cohorts, rng.randint(1, 3)):
            joined[cohort].append(ident)
    requests = []
    for cohort, members in joined.items():
        for start in range(0, len(members), 1000):
            chunk = members[start:start + 1000]
            requests.append(ImportRequest(-1 - len(requests), cohort, tuple(Change(i, False) for i in chunk)))
    return requests


def _continuous_import(profile: Profile, cohorts: list[Cohort], identified: list[Ident], others: list[Ident],
                       odd: list[Ident], rng: random.Random) -> list[ImportRequest]:
    """Mostly external IDs, some aliases and devices of non-identified profiles, about 1% that
    never match; removes drawn mostly from what was added, so most changes are effective."""
    believed: dict[Cohort, set[Ident]] = {c: set() for c in cohorts}
    weights = [3] * profile.cohorts_mixpanel + [1] * profile.cohorts_amplitude
    requests: list[ImportRequest] = []
    sent = 0
    while sent < profile.changes:
        cohort = rng.choices(cohorts, weights)[0]
        top = profile.request_max
        size = min(rng.choice((rng.randint(20, top // 3), rng.randint(top // 3, top), top)), profile.changes - sent)
        size = max(1, min(size, len(identified) // 2))  # always room for distinct identifiers
        remove_share = rng.choice((0.0, 0.3, 0.6))
        members = believed[cohort]
        chosen: dict[Ident, bool] = {}
        removable = rng.sample(sorted(members), min(len(members), int(size * remove_share)))
        for ident in removable:
            chosen[ident] = True
        while len(chosen) < size:
            draw = rng.random()
            if draw < 0.01:
                chosen.setdefault(rng.choice(odd), rng.random() < 0.3)
            else:
                chosen.setdefault(rng.choice(others if draw < 0.15 else identified), False)
        for ident, remove in chosen.items():
            (members.discard if remove else members.add)(ident)
        changes = tuple(Change(i, r) for i, r in chosen.items())
        requests.append(ImportRequest(len(requests), cohort, changes))
        sent += len(changes)
    return requests


def _volatile_ops(volatile: list[Ident], count: int, rng: random.Random) -> list[ProfileOp]:
    """Merges (both sides volatile) and deletes, drawn among the profiles still there, so
    chains occur: a kept profile merged again or deleted later."""
    alive = list(volatile)
    ops: list[ProfileOp] = []
    while len(ops) < count and len(alive) > 2:
        if rng.random() < 0.6:
            merged, kept = rng.sample(alive, 2)
            ops.append(ProfileOp("merge", merged, kept))
            alive.remove(merged)
        else:
            gone = rng.choice(alive)
            ops.append(ProfileOp("delete", gone))
            alive.remove(gone)
    return ops
