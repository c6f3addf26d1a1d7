"""What one sync sends: everything on the first sync, the difference on later ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..identifiers import Change, Identifier


@dataclass(frozen=True)
class CohortDiff:
    removes: list[Change]
    adds: list[Change]

    @property
    def size(self) -> int:
        return len(self.removes) + len(self.adds)


def diff_members(previous: frozenset[Identifier] | None, current: Mapping[Identifier, datetime | None]) -> CohortDiff:
    """Adds for identifiers new since `previous`, removes for those gone; `previous` None
    (no successful sync yet) makes every current identifier an add."""
    known = previous or frozenset()
    adds = [Change(identifier, False, stamp) for identifier, stamp in current.items() if identifier not in known]
    removes = [Change(identifier, True) for identifier in sorted(known - current.keys())]
    return CohortDiff(removes=removes, adds=adds)
