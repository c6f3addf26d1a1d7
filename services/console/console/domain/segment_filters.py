"""The segment builder's rows as a segment-store filter, and back.

A row reads `Mixpanel_Cohorts includes "Churn risk"`: a partner's cohorts, `includes` or
`excludes`, one cohort. Rows combine with `all` (every row holds), `any` (at least one) or
`not` (none of them: `{"not": {"any": [...]}}`). The rules of what a filter means stay in
segment-store; this only spells the operator's choices in its grammar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["includes", "excludes"]
Combine = Literal["all", "any", "not"]
MODES: tuple[Mode, ...] = ("includes", "excludes")
COMBINES: tuple[Combine, ...] = ("all", "any", "not")


class BuilderError(ValueError):
    """The builder's form is not a filter (a row without a cohort, an unknown mode)."""


@dataclass(frozen=True)
class Row:
    """One builder row: `<Partner>_Cohorts <mode> <cohort_id>`."""

    partner: str
    mode: Mode
    cohort_id: str


def cohorts_key(partner: str) -> str:
    """`mixpanel` → `Mixpanel_Cohorts`, the key Braze's filters use."""
    return f"{partner[:1].upper()}{partner[1:]}_Cohorts"


def cohort_choice(partner: str, cohort_id: str) -> str:
    """One option value of the builder's cohort list (partners never contain `/`)."""
    return f"{partner}/{cohort_id}"


def parse_rows(modes: list[str], choices: list[str]) -> list[Row]:
    """Rows from the form's parallel `mode` and `cohort` fields; rows left blank are skipped."""
    if len(modes) != len(choices):
        raise BuilderError("every row needs a mode and a cohort")
    rows = []
    for position, (mode, choice) in enumerate(zip(modes, choices, strict=True), start=1):
        if not choice:
            continue
        partner, sep, cohort_id = choice.partition("/")
        if not sep or not partner or not cohort_id:
            raise BuilderError(f"row {position}: choose a cohort")
        if mode not in MODES:
            raise BuilderError(f"row {position}: mode must be includes or excludes")
        rows.append(Row(partner, mode, cohort_id))  # type: ignore[arg-type]
    return rows


def build_filter(rows: list[Row], combine: str) -> dict | None:
    """The filter the rows describe, or None with no rows (nothing to size or save yet)."""
    if combine not in COMBINES:
        raise BuilderError("combine rows with all, any or not")
    if not rows:
        return None
    parts = [{cohorts_key(r.partner): {r.mode: [r.cohort_id]}} for r in rows]
    if combine == "not":
        return {"not": parts[0] if len(parts) == 1 else {"any": parts}}
    if len(parts) == 1:
        return parts[0]
    return {combine: parts}


def describe(rows: list[Row], combine: str, names: dict[tuple[str, str], str]) -> str:
    """A one-line reading of the filter, as the builder shows it."""
    said = [f'{cohorts_key(r.partner)} {r.mode} "{names.get((r.partner, r.cohort_id), r.cohort_id)}"' for r in rows]
    if not said:
        return "no rows yet"
    joiner = {"all": " and ", "any": " or ", "not": " or "}[combine]
    text = joiner.join(said)
    return f"not ({text})" if combine == "not" else text
