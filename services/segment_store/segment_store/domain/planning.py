"""Turns a filter into set algebra Redis runs itself, one member bucket at a time.

Members are stored per cohort in buckets of user numbers (see adapters/layout.py); every
cohort of a workspace, and the set of all its profiles, uses the same buckets, so a filter
is evaluated bucket by bucket with SUNIONSTORE / SINTERSTORE / SDIFFSTORE and never pulled
into Python. A plan is a list of steps; step i stores its result in temporary set i, and the
last step is the segment. Sources name a cohort's bucket, every profile's bucket, an
earlier step, or nothing (a cohort that does not exist yet is empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .filters import AllOf, AnyOf, CohortFilter, Filter, Not

Op = Literal["union", "inter", "diff"]
Source = tuple[str, ...] | tuple[str, int]
"""("cohort", k) | ("all",) | ("step", i) | ("none",)"""

EVERY_PROFILE: Source = ("all",)
NOTHING: Source = ("none",)


@dataclass(frozen=True)
class Step:
    op: Op
    sources: tuple[Source, ...]

    def as_json(self) -> list:
        return [self.op, [list(source) for source in self.sources]]


@dataclass
class Plan:
    """Steps in order; the segment is the last one's result."""

    steps: list[Step] = field(default_factory=list)

    def add(self, op: Op, sources: list[Source]) -> Source:
        self.steps.append(Step(op, tuple(sources)))
        return ("step", len(self.steps))

    def as_json(self) -> list:
        return [step.as_json() for step in self.steps]


def plan_filter(node: Filter, cohort_numbers: Mapping[tuple[str, str], int | str]) -> Plan:
    """The steps that compute `node`, given the workspace's cohort numbers by (partner, cohort_id).
    Cohorts missing from `cohort_numbers` are empty (not yet named nor changed)."""
    plan = Plan()
    _compile(node, cohort_numbers, plan)
    return plan


def _compile(node: Filter, numbers: Mapping[tuple[str, str], int], plan: Plan) -> Source:
    if isinstance(node, CohortFilter):
        cohorts: list[Source] = [
            ("cohort", numbers[(node.partner, c)]) for c in node.cohort_ids if (node.partner, c) in numbers
        ]
        if node.mode == "includes":
            return plan.add("union", cohorts or [NOTHING])
        return plan.add("diff", [EVERY_PROFILE, *cohorts])
    if isinstance(node, Not):
        return plan.add("diff", [EVERY_PROFILE, _compile(node.part, numbers, plan)])
    parts = [_compile(part, numbers, plan) for part in node.parts]
    return plan.add("inter" if isinstance(node, AllOf) else "union", parts)


def evaluate_in_memory(plan: Plan, cohorts: Mapping[int, set[str]], everyone: set[str]) -> set[str]:
    """The plan run on Python sets: the reference the Redis evaluation is tested against."""
    results: list[set[str]] = []

    def value(source: Source) -> set[str]:
        kind = source[0]
        if kind == "cohort":
            return cohorts.get(source[1], set())
        if kind == "all":
            return everyone
        if kind == "step":
            return results[source[1] - 1]
        return set()

    for step in plan.steps:
        sets = [value(source) for source in step.sources]
        if step.op == "union":
            results.append(set().union(*sets))
        elif step.op == "inter":
            results.append(set.intersection(*sets))
        else:
            results.append(sets[0].difference(*sets[1:]))
    return results[-1]


__all__ = ["AnyOf", "Plan", "Step", "evaluate_in_memory", "plan_filter"]
