"""Identifier rules with plain values: placeholders, alias keys, user IDs, user_refs, clocks."""

from datetime import UTC, datetime

import pytest
from cohort_shared.schemas import Identifier
from identity_resolution.domain.effects import Clock
from identity_resolution.domain.identifiers import (
    UserRef,
    alias_from_key,
    alias_key,
    derive_user_id,
    is_bogus,
    is_bogus_identifier,
    is_user_id,
    parse_user_ref,
)


@pytest.mark.parametrize("value", [
    "", " ", "null", "NULL", " Null\t", "none", "None", "undefined", "UNDEFINED", "anonymous", "Anonymous",
    "0", " 0 ", "-1", "[object Object]", "[OBJECT OBJECT]", "nan", "NaN", "\n\r\x0b\x0cnull",
])
def test_placeholders_are_bogus(value):
    assert is_bogus(value)


@pytest.mark.parametrize("value", [
    "u1", "nullable", "0.0", "00", "-10", "[object]", "\u00a0null", "null\u00a0", "\uff10", "n u l l", "a@x.com",
])
def test_real_identifiers_are_not(value):
    assert not is_bogus(value)


def test_an_alias_is_bogus_when_its_name_or_label_is():
    assert is_bogus_identifier(Identifier(kind="alias", value="a@x.com", label=" "))
    assert is_bogus_identifier(Identifier(kind="alias", value="undefined", label="email"))
    assert not is_bogus_identifier(Identifier(kind="alias", value="a@x.com", label="email"))


@pytest.mark.parametrize("label,name", [("email", "a@x.com"), ("e:mail", "x"), ("e", ":mailx"), ("\u00e9", "\u00fc9"), ("12", "3")])
def test_alias_keys_round_trip_and_never_collide(label, name):
    alias = alias_from_key(alias_key(label, name))
    assert (alias.alias_label, alias.alias_name) == (label, name)
    assert alias_key("e:mail", "x") != alias_key("e", ":mailx")


def test_user_ids_are_deterministic_and_differ_by_workspace_request_and_index():
    first = derive_user_id("acme", "r1", 0)
    assert first == derive_user_id("acme", "r1", 0)
    assert len({first, derive_user_id("beta", "r1", 0), derive_user_id("acme", "r2", 0), derive_user_id("acme", "r1", 1)}) == 4
    assert is_user_id(first) and len(first) == 24
    assert not is_user_id("u1") and not is_user_id(first[:-1] + "g")


@pytest.mark.parametrize("text,expected", [
    ("external_id:u1", UserRef("external_id", "u1")),
    ("external_id:a:b", UserRef("external_id", "a:b")),
    ("device_id:d-1", UserRef("device_id", "d-1")),
    ("alias:email:a@x.com", UserRef("alias", "a@x.com", "email")),
    ("alias:email:a:b", UserRef("alias", "a:b", "email")),
    ("u0123456789abcdef0123456", UserRef("user_id", "u0123456789abcdef0123456")),
    ("anything:else", UserRef("user_id", "anything:else")),
])
def test_user_refs(text, expected):
    assert parse_user_ref(text) == expected


@pytest.mark.parametrize("text", ["", "external_id:", "device_id:", "alias:", "alias:email", "alias::a", "alias:email:"])
def test_malformed_user_refs_say_why(text):
    with pytest.raises(ValueError, match="user_ref"):
        parse_user_ref(text)


def test_clock_milliseconds_are_exact():
    clock = Clock(datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC), 10)
    assert clock.now_ms == 1767225600999
    assert clock.park_until_ms == clock.now_ms + 10_000
    assert clock.park_until == datetime(2026, 1, 1, 0, 0, 10, 999999, tzinfo=UTC)
