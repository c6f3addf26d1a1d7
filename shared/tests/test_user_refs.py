import pytest
from cohort_shared.user_refs import UserRef, parse_user_ref


@pytest.mark.parametrize("text,expected", [
    ("u0a1b2", UserRef("user_id", "u0a1b2")),
    ("external_id:a:b", UserRef("external_id", "a:b")),
    ("device_id:d9", UserRef("device_id", "d9")),
    ("alias:email:a:b", UserRef("alias", "a:b", "email")),
    ("anything:else", UserRef("user_id", "anything:else")),
])
def test_parses_every_form(text, expected):
    assert parse_user_ref(text) == expected


@pytest.mark.parametrize("text", ["", "x" * 65, "external_id:", "device_id:", "alias:", "alias:email", "alias::a"])
def test_malformed_refs_say_why(text):
    with pytest.raises(ValueError, match="user_ref"):
        parse_user_ref(text)
