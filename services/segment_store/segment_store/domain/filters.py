"""Segment filters (docs/segments.md): parsing and validating the JSON an operator posts.

Grammar, each filter an object with exactly one key:
  {"<Partner>_Cohorts": {"includes": [cohort_id, …]}}   member of any listed cohort
  {"<Partner>_Cohorts": {"excludes": [cohort_id, …]}}   member of none (of every profile)
  {"all": [filter, …]}  {"any": [filter, …]}  {"not": filter}
`<Partner>` is the partner's name with a capital, as Braze spells it: `Mixpanel_Cohorts`
names partner `mixpanel`. Every error names the path of what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from cohort_shared.schemas import MAX_IDENTIFIER_LENGTH, PARTNER_PATTERN

from .errors import Invalid

MAX_DEPTH = 10
MAX_COHORT_REFS = 100
MAX_NAME_LENGTH = 512
_PARTNER_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,31})_Cohorts$")


@dataclass(frozen=True)
class CohortFilter:
    """Members of any (`includes`) or of none (`excludes`) of one partner's listed cohorts."""

    partner: str
    mode: Literal["includes", "excludes"]
    cohort_ids: tuple[str, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    part: Filter


Filter = CohortFilter | AllOf | AnyOf | Not


def partner_of(key: str) -> str | None:
    """`Mixpanel_Cohorts` → `mixpanel`; None when `key` does not name a partner's cohorts."""
    match = _PARTNER_KEY.match(key)
    if not match:
        return None
    partner = match.group(1).lower()
    return partner if re.fullmatch(PARTNER_PATTERN, partner) else None


def parse_filter(raw: Any) -> Filter:
    """The filter `raw` describes, or `Invalid` naming the first thing wrong with it."""
    return _parse(raw, "filter", 1, [0])


def parse_segment_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("name must be a non-empty string")
    if len(raw) > MAX_NAME_LENGTH:
        raise Invalid(f"name must be at most {MAX_NAME_LENGTH} characters")
    return raw


def _parse(raw: Any, path: str, depth: int, refs: list[int]) -> Filter:
    if depth > MAX_DEPTH:
        raise Invalid(f"{path}: filters nest at most {MAX_DEPTH} deep")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise Invalid(f"{path} must be an object with exactly one key: all, any, not or <Partner>_Cohorts")
    (key, value), = raw.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise Invalid(f"{path}.{key} must be a non-empty list of filters")
        parts = tuple(_parse(part, f"{path}.{key}[{i}]", depth + 1, refs) for i, part in enumerate(value))
        return AllOf(parts) if key == "all" else AnyOf(parts)
    if key == "not":
        return Not(_parse(value, f"{path}.not", depth + 1, refs))
    partner = partner_of(key)
    if partner is None:
        raise Invalid(f"{path}: unknown key {key!r}; expected all, any, not or <Partner>_Cohorts (e.g. Mixpanel_Cohorts)")
    return _parse_cohorts(value, f"{path}.{key}", partner, refs)


def _parse_cohorts(value: Any, path: str, partner: str, refs: list[int]) -> CohortFilter:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("includes", "excludes"):
        raise Invalid(f"{path} must be an object with exactly one key: includes or excludes")
    (mode, cohort_ids), = value.items()
    if not isinstance(cohort_ids, list) or not cohort_ids:
        raise Invalid(f"{path}.{mode} must be a non-empty list of cohort IDs")
    for i, cohort_id in enumerate(cohort_ids):
        if not isinstance(cohort_id, str) or not cohort_id or len(cohort_id) > MAX_IDENTIFIER_LENGTH:
            raise Invalid(f"{path}.{mode}[{i}] must be a cohort ID (a string of 1 to {MAX_IDENTIFIER_LENGTH} characters)")
    refs[0] += len(cohort_ids)
    if refs[0] > MAX_COHORT_REFS:
        raise Invalid(f"{path}: a filter names at most {MAX_COHORT_REFS} cohorts in all")
    return CohortFilter(partner, mode, tuple(dict.fromkeys(cohort_ids)))


def filter_json_schemas(ref: str = "#/components/schemas/{name}") -> dict[str, dict[str, Any]]:
    """The grammar above as JSON Schema components (`SegmentDefinition`, `SegmentPreview`, `SegmentFilter`,
    `CohortSelection`), for the API document. Two limits are not stated there: nesting at
    most MAX_DEPTH deep and MAX_COHORT_REFS cohorts in all."""

    def only(key: str | None, value: dict[str, Any], pattern: str | None = None) -> dict[str, Any]:
        if pattern is not None:  # one key matching `pattern`
            return {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                    "patternProperties": {pattern: value}}
        return {"type": "object", "required": [key], "properties": {key: value}, "additionalProperties": False}

    a_filter = {"$ref": ref.format(name="SegmentFilter")}
    parts = {"type": "array", "minItems": 1, "items": a_filter}
    cohort_ids = {"type": "array", "minItems": 1, "maxItems": MAX_COHORT_REFS,
                  "items": {"type": "string", "minLength": 1, "maxLength": MAX_IDENTIFIER_LENGTH}}
    return {
        "SegmentDefinition": {
            "type": "object", "required": ["name", "filter"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": r"\S"},
                           "filter": a_filter},
        },
        "SegmentPreview": {
            "type": "object", "required": ["filter"], "properties": {"filter": a_filter},
        },
        "SegmentFilter": {
            "description": f"exactly one key: all, any, not or <Partner>_Cohorts (e.g. Mixpanel_Cohorts); "
                           f"nested at most {MAX_DEPTH} deep, naming at most {MAX_COHORT_REFS} cohorts in all",
            "oneOf": [only("all", parts), only("any", parts), only("not", a_filter),
                      only(None, {"$ref": ref.format(name="CohortSelection")}, _PARTNER_KEY.pattern)],
        },
        "CohortSelection": {
            "description": "includes: member of any listed cohort; excludes: member of none",
            "oneOf": [only("includes", cohort_ids), only("excludes", cohort_ids)],
        },
    }


def cohorts_named(node: Filter) -> set[tuple[str, str]]:
    """Every (partner, cohort_id) the filter mentions."""
    if isinstance(node, CohortFilter):
        return {(node.partner, cohort_id) for cohort_id in node.cohort_ids}
    if isinstance(node, Not):
        return cohorts_named(node.part)
    return set().union(*(cohorts_named(part) for part in node.parts))
