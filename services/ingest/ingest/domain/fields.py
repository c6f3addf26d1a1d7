"""Field types of the producer API, each with the error message docs/producer-api.md gives it.

Fields with a prescribed message validate themselves (a missing one included), so the
message is the same whether the field is absent, null, of the wrong type or out of range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from cohort_shared.schemas import MAX_IDENTIFIER_LENGTH
from pydantic import Field, PlainValidator, StrictStr, WithJsonSchema
from pydantic_core import PydanticCustomError

ISO_TIME_MESSAGE = "must be a valid time as an ISO-8601 string"
MAX_TIME_LENGTH = 64  # longer than any ISO-8601 time; spares the parser absurd input


def _reject(rule: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(f"ingest_{rule}", message)


def parse_iso_time(value: Any) -> datetime:
    """An ISO-8601 string → an aware UTC time. A time without offset is taken as UTC."""
    if not isinstance(value, str) or len(value) > MAX_TIME_LENGTH:
        raise _reject("iso_time", ISO_TIME_MESSAGE)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted past the range
        raise _reject("iso_time", ISO_TIME_MESSAGE) from None


def validate_cohort_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER_LENGTH:
        raise _reject("cohort_id", "must be a valid string")
    return value


def validate_cohort_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _reject("name", "must be a non-empty string")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise _reject("name", f"must be a non-empty string of at most {MAX_IDENTIFIER_LENGTH} characters")
    return value


def _string_schema(description: str, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description, **extra})


IsoTime = Annotated[
    datetime,
    PlainValidator(parse_iso_time),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO-8601; UTC when no offset"}),
]
CohortIdField = Annotated[
    str,
    PlainValidator(validate_cohort_id),
    _string_schema("the partner's cohort ID", minLength=1, maxLength=MAX_IDENTIFIER_LENGTH),
]
CohortNameField = Annotated[
    str,
    PlainValidator(validate_cohort_name),
    _string_schema("the cohort's display name", minLength=1, maxLength=MAX_IDENTIFIER_LENGTH, pattern=r"\S"),
]
IdentifierString = Annotated[StrictStr, Field(max_length=MAX_IDENTIFIER_LENGTH)]
"""Any string up to 512 characters: "", "null" or "anonymous" are passed on, and
identity-resolution reports them unmatched (`invalid_identifier`) rather than ingest
refusing a whole request for them."""
