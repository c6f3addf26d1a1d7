"""The stable `event_id` of a membership change (SPEC §5).

uuid5 over what identifies the change: workspace, partner, cohort, user, change, cause and
the input it came from (a cohort import's `source_id`, a merge's or a deletion's). The Lua
scripts compute the very same value (adapters/lua/common.lua); a test holds them equal.
"""

from __future__ import annotations

import uuid

EVENT_NAMESPACE = uuid.UUID("6f1c3c5e-2f43-4b8e-9a57-5b8f0c6d1e21")
SEPARATOR = "\x1f"


def event_id(workspace_id: str, partner: str, cohort_id: str, user_id: str, change: str, cause: str, source_id: str) -> str:
    name = SEPARATOR.join((workspace_id, partner, cohort_id, user_id, change, cause, source_id))
    return str(uuid.uuid5(EVENT_NAMESPACE, name))
