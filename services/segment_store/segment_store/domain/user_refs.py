"""`user_ref` in segment-store's API: the shared parser (cohort_shared.user_refs), its
refusals as segment-store's `Invalid`."""

from __future__ import annotations

from cohort_shared.user_refs import UserRef
from cohort_shared.user_refs import parse_user_ref as _parse

from .errors import Invalid


def parse_user_ref(raw: str) -> UserRef:
    try:
        return _parse(raw)
    except ValueError as refusal:
        raise Invalid(str(refusal)) from None


__all__ = ["UserRef", "parse_user_ref"]
