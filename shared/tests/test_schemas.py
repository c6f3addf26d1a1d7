"""Every message schema round-trips through bytes and rejects bad values."""

from datetime import datetime

import orjson
import pytest
from cohort_shared import schemas as s
from cohort_shared.examples import EXAMPLES, EXT, NOW
from cohort_shared.topics import ALL_TOPICS, Topics, dlq_name
from pydantic import ValidationError


def test_every_topic_has_a_schema_and_an_example():
    assert set(s.TOPIC_SCHEMAS) == set(ALL_TOPICS) == set(EXAMPLES)


@pytest.mark.parametrize("topic,message", [(t, m) for t, ms in EXAMPLES.items() for m in ms])
def test_round_trip(topic, message):
    assert s.decode(topic, message.to_bytes()) == message
    assert message.kafka_key()


@pytest.mark.parametrize("topic,message", [(t, m) for t, ms in EXAMPLES.items() for m in ms])
def test_bytes_are_those_of_earlier_versions(topic, message):
    """to_bytes writes what orjson over model_dump wrote before it: the same records on the
    topics (and in outboxes) whichever version wrote them."""
    assert message.to_bytes() == orjson.dumps(message.model_dump(mode="json"))


def test_bytes_of_unicode_and_numbers_are_those_of_earlier_versions():
    user = s.TrackedUser(external_id="\u00fc\u2028x", custom_attributes={
        "f": 1.1, "g": 1e20, "h": 1e-7, "s": "\u00e9\U0001f600", "n": None, "l": [1, 2.5], "b": True})
    assert user.model_dump_json().encode() == orjson.dumps(user.model_dump(mode="json"))


def test_public_event_has_exactly_the_spec_fields():
    fields = set(s.MembershipChanged.model_fields)
    assert fields == {"event_id", "workspace_id", "partner", "cohort_id", "user_id", "external_id",
                      "change", "cause", "occurred_at"}
    body = EXAMPLES["membership.changes"][0].to_bytes()
    with pytest.raises(ValidationError):
        s.decode("membership.changes", body.replace(b'"cause"', b'"extra":1,"cause"'))


@pytest.mark.parametrize(
    "build",
    [
        lambda: s.Identifier(kind="alias", value="a"),  # alias without label
        lambda: s.Identifier(kind="external_id", value="a", label="l"),  # label on non-alias
        lambda: s.Identifier(kind="email", value="a"),
        lambda: s.Identifier(kind="external_id", value="x" * 513),
        lambda: s.ProfileIdentifier(),
        lambda: s.ProfileIdentifier(external_id="a", device_id="d"),
        lambda: s.TrackedUser(),
        lambda: s.TrackedUser(external_id="a", device_id="d"),
        lambda: s.CohortNamed(workspace_id="bad ws", partner="mixpanel", cohort_id="c", name="n", named_at=NOW),
        lambda: s.CohortNamed(workspace_id="w", partner="Mix Panel", cohort_id="c", name="n", named_at=NOW),
        lambda: s.CohortNamed(workspace_id="w", partner="mixpanel", cohort_id="", name="n", named_at=NOW),
        lambda: s.CohortNamed(workspace_id="w", partner="mixpanel", cohort_id="c", name="", named_at=NOW),
        lambda: s.CohortNamed(workspace_id="w", partner="mixpanel", cohort_id="c", name="n",
                              named_at=datetime(2026, 1, 1)),  # naive time
        lambda: s.CohortChangesReceived(workspace_id="w", partner="mixpanel", cohort_id="c", request_id="r",
                                        received=-1, dropped_pre_2010=0, received_at=NOW),
        lambda: s.MembershipUnmatched(workspace_id="w", partner="mixpanel", cohort_id="c", change="add",
                                      identifier=EXT, reason="because", source_id="s", accepted_at=NOW),
        lambda: s.MembershipChanged(event_id="e", workspace_id="w", partner="mixpanel", cohort_id="c", user_id="U",
                                    external_id=None, change="add", cause="cohort_import", occurred_at=NOW),
    ],
)
def test_rejects_bad_values(build):
    with pytest.raises(ValidationError):
        build()


def accepted_with(changes: list) -> bytes:
    accepted = EXAMPLES["cohort.changes"][0]
    return orjson.dumps({**orjson.loads(accepted.to_bytes()), "changes": changes})


def test_cohort_changes_written_as_objects_by_earlier_versions_are_read_as_rows():
    accepted = EXAMPLES["cohort.changes"][0]
    objects = [{"identifier": {"kind": c.kind, "value": c.value, "label": c.label}, "should_remove": c.should_remove,
                "timestamp": c.timestamp and c.timestamp.isoformat()} for c in accepted.changes]
    assert s.decode("cohort.changes", accepted_with(objects)) == accepted
    assert all(type(c) is s.CohortChange for c in s.decode("cohort.changes", accepted_with(objects)).changes)


@pytest.mark.parametrize("row", [
    ["alias", "a@x.com", None, False, None],  # alias without label
    ["external_id", "u1", "email", False, None],  # label on non-alias
    ["email", "a@x.com", None, False, None],
    ["external_id", "x" * 513, None, False, None],
    ["external_id", "u1", None, "maybe", None],
    ["external_id", "u1", None, False, "2026-01-01T00:00:00"],  # naive time
    ["external_id"],
])
def test_a_bad_cohort_change_row_is_refused_naming_its_place(row):
    with pytest.raises(ValidationError) as refused:
        s.decode("cohort.changes", accepted_with([["external_id", "u0", None, False, None], row]))
    assert "changes" in str(refused.value) and "1" in str(refused.value)


def test_unknown_type_on_a_multi_type_topic_is_rejected():
    with pytest.raises(ValidationError):
        s.decode("cohort.meta", b'{"type": "cohort_deleted", "workspace_id": "w"}')


def test_messages_are_immutable():
    msg = EXAMPLES["cohort.meta"][0]
    with pytest.raises(ValidationError):
        msg.name = "other"


def test_cohort_messages_share_one_key_per_cohort():
    named, received = EXAMPLES["cohort.meta"]
    assert named.kafka_key() == received.kafka_key() == s.cohort_key("acme", "mixpanel", "mp_1")
    assert s.cohort_key("a", "b", "c") != s.cohort_key("a", "bc", "")


def test_topic_prefix_and_dlq_names():
    topics = Topics("staging.")
    assert topics.membership_changes == "staging.membership.changes"
    assert dlq_name(topics.cohort_changes) == "staging.cohort.changes.dlq"
    assert len(topics.all()) == 2 * len(ALL_TOPICS)
    assert topics.is_compacted("staging.identity.profiles") and not topics.is_compacted("identity.profiles")


def test_a_dead_letter_reason_names_fields_and_rules_never_values_from_the_record() -> None:
    import pytest
    from cohort_shared.schemas import decode
    from cohort_shared.stream.outgoing import describe_rejection

    secret = "jane.doe@example.com"
    records = [
        f'{{"type": "{secret}"}}',
        f'{{"type": "cohort_named", "workspace_id": "{secret}", "partner": "{secret}", "cohort_id": "c", '
        f'"name": "n", "created_at": "{secret}", "named_at": "{secret}"}}',
        f'{{"type": "cohort_changes_received", "workspace_id": "a", "partner": "p", "cohort_id": "c", '
        f'"request_id": "r", "received": "{secret}", "dropped_pre_2010": 0, "received_at": "2020-01-01T00:00:00Z"}}',
        f'not json {secret}',
    ]
    for raw in records:
        with pytest.raises(ValueError) as caught:
            decode("cohort.meta", raw.encode())
        reason = describe_rejection(caught.value)
        assert "jane" not in reason and "example" not in reason, reason
    with pytest.raises(ValueError) as caught:
        decode("cohort.meta", records[0].encode())
    assert "type tag is none of 'cohort_named', 'cohort_changes_received'" in describe_rejection(caught.value)
