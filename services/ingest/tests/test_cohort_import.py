"""The cohort import rules (docs/producer-api.md) on plain values: mapping, retention cut-off, limits, messages."""

from datetime import UTC, datetime

import pytest
from cohort_shared.schemas import Identifier
from ingest.domain.cohort_import import cohort_import, cohort_named, parse_cohort_changes, parse_cohort_naming
from ingest.domain.errors import InvalidRequest

NOW = datetime(2026, 1, 21, 14, 0, tzinfo=UTC)
CUTOFF = datetime(2010, 1, 1, tzinfo=UTC)
KEYS = {"partner_api_key": "p", "client_secret": "c"}


def changes(*entries, **extra):
    return parse_cohort_changes({**KEYS, "cohort_id": "mp_1", "cohort_changes": list(entries), **extra})


def refused(parse, body) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse({**KEYS, **body})
    return caught.value.message


def test_each_kind_of_identifier_maps_to_its_identifier_kind():
    body = changes({"user_ids": ["u1"], "device_ids": ["d9"], "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}]},
                   {"user_ids": ["u7"], "should_remove": True})
    result = cohort_import("acme", "mixpanel", body, cutoff=CUTOFF, request_id="r1", now=NOW)
    assert [(c.identifier(), c.should_remove) for c in result.accepted.changes] == [
        (Identifier(kind="external_id", value="u1"), False),
        (Identifier(kind="device_id", value="d9"), False),
        (Identifier(kind="alias", value="a@x.com", label="email"), False),
        (Identifier(kind="external_id", value="u7"), True),
    ]
    assert result.accepted.request_id == result.received.request_id == "r1"
    assert (result.received.received, result.received.dropped_pre_2010, result.accepted_count) == (4, 0, 4)
    assert result.accepted.kafka_key() == result.received.kafka_key() == b"acme\x1fmixpanel\x1fmp_1"


def test_changes_stamped_before_the_cutoff_are_dropped_and_counted_per_identifier():
    body = changes({"user_ids": ["old1", "old2"], "device_ids": ["old3"], "timestamp": "2009-12-31T23:59:59Z"},
                   {"user_ids": ["edge"], "timestamp": "2010-01-01T00:00:00Z"},
                   {"user_ids": ["shifted"], "timestamp": "2010-01-01T03:00:00+05:00"},  # 2009-12-31T22:00Z
                   {"user_ids": ["new"], "timestamp": "2026-01-21T19:20:30+05:00", "should_remove": True})
    result = cohort_import("acme", "mixpanel", body, cutoff=CUTOFF, request_id="r", now=NOW)
    assert [c.value for c in result.accepted.changes] == ["edge", "new"]
    assert result.accepted.changes[1].timestamp == datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)
    assert (result.received.received, result.received.dropped_pre_2010) == (6, 4)


def test_a_request_with_every_change_dropped_has_no_changes_message():
    body = changes({"user_ids": ["u1"], "timestamp": "1999-01-01T00:00:00Z"})
    result = cohort_import("acme", "mixpanel", body, cutoff=CUTOFF, request_id="r", now=NOW)
    assert result.accepted is None and result.accepted_count == 0
    assert (result.received.received, result.received.dropped_pre_2010) == (1, 1)


def test_the_cutoff_is_a_parameter():
    body = changes({"user_ids": ["u1"], "timestamp": "2020-01-01T00:00:00Z"})
    later = datetime(2021, 1, 1, tzinfo=UTC)
    assert cohort_import("a", "mixpanel", body, cutoff=later, request_id="r", now=NOW).received.dropped_pre_2010 == 1


def test_bogus_identifier_strings_are_passed_on_for_identity_resolution_to_judge():
    body = changes({"user_ids": ["null", "anonymous", "", " "], "aliases": [{"alias_name": "", "alias_label": ""}]})
    result = cohort_import("a", "mixpanel", body, cutoff=CUTOFF, request_id="r", now=NOW)
    assert [c.value for c in result.accepted.changes] == ["null", "anonymous", "", " ", ""]


def test_naming_message_carries_name_and_created_at():
    body = parse_cohort_naming({**KEYS, "cohort_id": "mp_1", "name": "Churn risk", "created_at": "2026-01-21T19:20:30+05:00"})
    message = cohort_named("acme", "mixpanel", body, NOW)
    assert (message.cohort_id, message.name, message.named_at) == ("mp_1", "Churn risk", NOW)
    assert message.created_at == datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize("cohort_id", [None, 12, "", "x" * 513, ["mp_1"], {"id": 1}, True])
def test_cohort_id_must_be_a_valid_string(cohort_id):
    body = {"name": "n", "created_at": "2026-01-01T00:00:00Z", "cohort_id": cohort_id}
    assert refused(parse_cohort_naming, body) == "cohort_id must be a valid string"
    assert refused(parse_cohort_changes, {"cohort_id": cohort_id, "cohort_changes": [{"user_ids": ["u"]}]}) == \
        "cohort_id must be a valid string"


def test_a_missing_cohort_id_gets_the_same_message():
    assert refused(parse_cohort_naming, {"name": "n", "created_at": "2026-01-01T00:00:00Z"}) == \
        "cohort_id must be a valid string"


@pytest.mark.parametrize("name", [None, "", "   ", 5, ["n"], False])
def test_name_must_be_a_non_empty_string(name):
    assert refused(parse_cohort_naming, {"cohort_id": "c", "name": name, "created_at": "2026-01-01T00:00:00Z"}) == \
        "name must be a non-empty string"
    assert refused(parse_cohort_naming, {"cohort_id": "c", "created_at": "2026-01-01T00:00:00Z"}) == \
        "name must be a non-empty string"


def test_an_over_long_name_is_refused_saying_how_long_it_may_be():
    message = refused(parse_cohort_naming, {"cohort_id": "c", "name": "n" * 513, "created_at": "2026-01-01T00:00:00Z"})
    assert message == "name must be a non-empty string of at most 512 characters"


@pytest.mark.parametrize("created_at", [None, "", "yesterday", "2026-13-01T00:00:00Z", 1700000000, "2026-01-01T25:00",
                                        "0001-01-01T00:00:00+05:00", "x" * 100])
def test_created_at_must_be_an_iso_8601_time(created_at):
    body = {"cohort_id": "c", "name": "n", "created_at": created_at}
    assert refused(parse_cohort_naming, body) == "created_at must be a valid time as an ISO-8601 string"


def test_created_at_is_required():
    assert refused(parse_cohort_naming, {"cohort_id": "c", "name": "n"}) == \
        "created_at must be a valid time as an ISO-8601 string"


def test_a_time_without_offset_is_taken_as_utc():
    body = parse_cohort_naming({**KEYS, "cohort_id": "c", "name": "n", "created_at": "2026-01-21T10:00:00"})
    assert body.created_at == datetime(2026, 1, 21, 10, tzinfo=UTC)


@pytest.mark.parametrize(("entries", "message"), [
    (None, "cohort_changes must be a list"),
    ("u1", "cohort_changes must be a list"),
    ([], "cohort_changes must hold at least 1 entry"),
    (["u1"], "cohort_changes[0] must be a JSON object"),
    ([{}], "cohort_changes[0] must hold at least one of user_ids, device_ids, aliases"),
    ([{"user_ids": []}], "cohort_changes[0] must hold at least one of user_ids, device_ids, aliases"),
    ([{"user_ids": "u1"}], "cohort_changes[0].user_ids must be a list"),
    ([{"user_ids": None}], "cohort_changes[0].user_ids must be a list"),
    ([{"user_ids": ["u1", 7]}], "cohort_changes[0].user_ids[1] must be a string"),
    ([{"user_ids": ["u1", None]}], "cohort_changes[0].user_ids[1] must be a string"),
    ([{"user_ids": ["u"]}, {"device_ids": ["x" * 513]}], "cohort_changes[1].device_ids[0] must be at most 512 characters"),
    ([{"aliases": ["a@x.com"]}], "cohort_changes[0].aliases[0] must be a JSON object"),
    ([{"aliases": [{"alias_name": "a"}]}], "cohort_changes[0].aliases[0].alias_label is required"),
    ([{"aliases": [{"alias_name": "a", "alias_label": 1}]}], "cohort_changes[0].aliases[0].alias_label must be a string"),
    ([{"aliases": [{"alias_name": "a", "alias_label": "e", "x": 1}]}], "cohort_changes[0].aliases[0].x is not an allowed field"),
    ([{"user_id": ["u1"]}], "cohort_changes[0].user_id is not an allowed field"),
    ([{"user_ids": ["u"], "should_remove": "true"}], "cohort_changes[0].should_remove must be true or false"),
    ([{"user_ids": ["u"], "should_remove": 1}], "cohort_changes[0].should_remove must be true or false"),
    ([{"user_ids": ["u"], "timestamp": "soon"}], "cohort_changes[0].timestamp must be a valid time as an ISO-8601 string"),
    ([{"user_ids": ["u"], "timestamp": 1700000000}], "cohort_changes[0].timestamp must be a valid time as an ISO-8601 string"),
])
def test_each_malformed_change_is_named_by_its_path(entries, message):
    assert refused(parse_cohort_changes, {"cohort_id": "c", "cohort_changes": entries}) == message


def test_missing_cohort_changes_is_named():
    assert refused(parse_cohort_changes, {"cohort_id": "c"}) == "cohort_changes is required"


LIMIT_MESSAGE = "cohort_changes must hold at most 1,000 identifiers (user_ids, device_ids and aliases together) per request"


def test_at_most_1000_identifiers_counted_over_every_kind_and_entry():
    alias = {"alias_name": "a", "alias_label": "l"}
    at_limit = [{"user_ids": ["u"] * 500}, {"device_ids": ["d"] * 300, "aliases": [alias] * 200}]
    assert len(cohort_import("a", "mixpanel", changes(*at_limit), cutoff=CUTOFF, request_id="r", now=NOW)
               .accepted.changes) == 1000
    over = at_limit + [{"aliases": [alias]}]
    assert refused(parse_cohort_changes, {"cohort_id": "c", "cohort_changes": over}) == LIMIT_MESSAGE


def test_more_than_1000_entries_are_refused_with_the_limit_message():
    entries = [{"user_ids": ["u"]}] * 1001
    assert refused(parse_cohort_changes, {"cohort_id": "c", "cohort_changes": entries}) == LIMIT_MESSAGE


def test_a_null_timestamp_means_no_timestamp():
    body = changes({"user_ids": ["u"], "timestamp": None})
    assert body.cohort_changes[0].timestamp is None


def test_unknown_top_level_fields_are_ignored():
    assert changes({"user_ids": ["u"]}, extra_field={"a": 1}).cohort_id == "mp_1"
