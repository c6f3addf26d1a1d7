"""Which tracked script applies each input message, and with which arguments."""

import pytest
from cohort_shared.examples import EXAMPLES
from cohort_shared.schemas import Alias, ProfileUpdated
from segment_store.adapters.change_stream import call_for, index_fields, optional
from segment_store.adapters.scripts import WRITES, source

INPUTS = ["membership.resolved", "membership.unmatched", "cohort.meta", "identity.merges", "identity.profiles"]


@pytest.mark.parametrize("message", [m for topic in INPUTS for m in EXAMPLES[topic]], ids=lambda m: type(m).__name__)
def test_every_input_message_has_a_script_in_its_workspace(message):
    call = call_for(message)
    assert call.script in WRITES
    assert call.workspace == message.workspace_id == call.args[0]
    assert all(isinstance(arg, str | int) for arg in call.args)


def test_optional_strings_travel_with_a_presence_flag():
    assert optional(None) == ["", "0"]
    assert optional("") == ["", "1"]
    assert optional("u1") == ["u1", "1"]


def test_a_profile_is_indexed_by_every_identifier_it_holds():
    profile = ProfileUpdated(workspace_id="w", user_id="U1", external_id="u1", identified=True,
                             aliases=[Alias(alias_name="a@x.com", alias_label="email")], device_ids=["d1"],
                             updated_at="2026-01-01T00:00:00Z")
    assert index_fields(profile) == ["a\x1femail\x1fa@x.com", "d\x1fd1"]


def test_each_script_reads_its_base_key_from_its_place():
    assert source("apply_change", base_key_index=3).startswith("local BASE = KEYS[3]\n")
    assert source("find_user", base_key_index=1).startswith("local BASE = KEYS[1]\n")
