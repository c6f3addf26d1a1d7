"""Page cursors, limits, user_refs and event IDs."""

import uuid

import pytest
from segment_store.adapters.layout import ref_field
from segment_store.domain.cursor import check_limit, decode_cursor, encode_cursor
from segment_store.domain.errors import Invalid
from segment_store.domain.events import EVENT_NAMESPACE, event_id
from segment_store.domain.user_refs import UserRef, parse_user_ref


def test_a_cursor_round_trips_within_its_listing_only():
    cursor = encode_cursor("cohort:w:1", 1234)
    assert decode_cursor("cohort:w:1", cursor) == 1234
    assert decode_cursor("cohort:w:1", None) == 0
    for bad in ("", "nonsense", "!!!", encode_cursor("cohort:w:2", 1234)):
        with pytest.raises(Invalid, match="cursor"):
            decode_cursor("cohort:w:1", bad)


def test_limit_is_1_to_1000_with_100_by_default():
    assert check_limit(None) == 100
    assert check_limit(1) == 1 and check_limit(1000) == 1000
    for bad in (0, -1, 1001):
        with pytest.raises(Invalid, match="limit must be between 1 and 1000"):
            check_limit(bad)


def test_user_refs_name_an_id_or_an_identifier():
    assert parse_user_ref("u0a1b2") == UserRef("user_id", "u0a1b2")
    assert parse_user_ref("external_id:u1") == UserRef("external_id", "u1")
    assert parse_user_ref("external_id:a:b") == UserRef("external_id", "a:b")
    assert parse_user_ref("alias:email:a@x.com") == UserRef("alias", "a@x.com", "email")
    assert parse_user_ref("alias:email:a:b") == UserRef("alias", "a:b", "email")
    assert parse_user_ref("device_id:d9") == UserRef("device_id", "d9")
    assert ref_field(parse_user_ref("alias:email:a@x.com")) == "a\x1femail\x1fa@x.com"
    assert ref_field(parse_user_ref("external_id:e1")) == "x\x1fe1"
    for bad in ("external_id:", "alias:email", "alias::x", "device_id:", "x" * 65):
        with pytest.raises(Invalid, match="user_ref"):
            parse_user_ref(bad)


def test_event_ids_are_uuid5_of_the_change_and_differ_by_every_part():
    parts = ("w", "mixpanel", "mp_1", "U1", "added", "cohort_import", "req-1:0")
    assert event_id(*parts) == str(uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(parts)))
    assert event_id(*parts) == event_id(*parts)
    variants = {event_id(*parts[:i], parts[i] + "x", *parts[i + 1:]) for i in range(len(parts))}
    assert len(variants) == len(parts) and event_id(*parts) not in variants
