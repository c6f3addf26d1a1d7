"""Field parsing and how errors are worded."""

from datetime import UTC, datetime, timedelta

import pytest
from ingest.domain.errors import describe_validation_error, field_path
from ingest.domain.fields import parse_iso_time
from pydantic_core import PydanticCustomError


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-21T19:20:30+05:00", datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)),
    ("2026-01-21T14:20:30Z", datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)),
    ("2026-01-21T14:20:30.123456Z", datetime(2026, 1, 21, 14, 20, 30, 123456, tzinfo=UTC)),
    ("2026-01-21", datetime(2026, 1, 21, tzinfo=UTC)),
    ("2026-01-21T14:20:30", datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)),
])
def test_iso_times_parse_to_utc(text, expected):
    parsed = parse_iso_time(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["", "nope", "2026-02-30", "9999-12-31T23:59:59-05:00", 0, None, 1.5, [], "2" * 65])
def test_anything_else_is_refused(value):
    with pytest.raises(PydanticCustomError):
        parse_iso_time(value)


def test_field_paths_read_like_json_access():
    assert field_path(("cohort_changes", 0, "aliases", 2, "alias_name")) == "cohort_changes[0].aliases[2].alias_name"
    assert field_path(()) == "body"
    assert field_path(("x" * 1000,)) == "x" * 64


def test_fastapi_locations_lose_their_prefix_and_overrides_win():
    errors = [{"type": "missing", "loc": ("path", "ws"), "msg": "Field required"}]
    assert describe_validation_error(errors, strip_loc_prefix=True) == "ws is required"
    assert describe_validation_error(errors, strip_loc_prefix=True, overrides={("ws",): "ws is bad"}) == "ws is bad"
    assert describe_validation_error([]) == "body is invalid"
    assert describe_validation_error([{"type": "weird", "loc": ("a",), "msg": "?"}]) == "a is invalid (weird)"
