"""What a request can be refused for; each maps to one HTTP status and a message naming the field."""

from __future__ import annotations


class Refused(Exception):
    """Base: `status` and a `message` safe to show the caller."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(Refused):
    """Malformed or out-of-range input (400)."""

    status = 400


class NotFound(Refused):
    """The workspace has no such cohort, segment or user (404)."""

    status = 404


class Ambiguous(Refused):
    """A cohort_id names cohorts of more than one partner in the workspace (409)."""

    status = 409
