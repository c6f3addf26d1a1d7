"""A webhook's filter (every field optional) and whether an event matches it."""

from __future__ import annotations

from typing import Literal

from cohort_shared.schemas import CohortId, MembershipChanged, Partner
from pydantic import BaseModel, ConfigDict, Field


class WebhookFilter(BaseModel):
    """Which events a webhook receives: a field left out matches everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partners: list[Partner] | None = Field(None, max_length=100, description="e.g. mixpanel")
    cohort_ids: list[CohortId] | None = Field(None, max_length=1000)
    changes: list[Literal["added", "removed"]] | None = Field(None, max_length=2)

    def matches(self, event: MembershipChanged) -> bool:
        return ((self.partners is None or event.partner in self.partners)
                and (self.cohort_ids is None or event.cohort_id in self.cohort_ids)
                and (self.changes is None or event.change in self.changes))
