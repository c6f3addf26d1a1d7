"""users/track as the Braze REST API sends it: profiles named by alias or braze_id,
`update_existing_only`, attributes kept as latest values; and deletes by braze_id."""

from cohort_shared.schemas import Alias, DeleteRequested, ProfileUpdated, TrackedUser, TrackRequested
from identity_resolution.domain import apply_record
from identity_resolution.domain.book import Book
from identity_resolution.domain.identifiers import parse_user_ref
from identity_resolution.testing import T0, WS, A, add, clock, cohort, user


def tracked(request_id: str, *users: TrackedUser) -> TrackRequested:
    return TrackRequested(workspace_id=WS, request_id=request_id, requested_at=T0, attributes=list(users))


def profiles(applied) -> list[ProfileUpdated]:
    return [e.message for e in applied.emitted if isinstance(e.message, ProfileUpdated)]


EMAIL = Alias(alias_name="a@x.com", alias_label="email")


def test_an_alias_creates_an_alias_only_profile_and_releases_its_parked_changes():
    book = Book(WS)
    apply_record(book, cohort("c1", add(A("email", "a@x.com"))), clock())
    applied = apply_record(book, tracked("t1", TrackedUser(user_alias=EMAIL, custom_attributes={"plan": "pro"})), clock())
    [profile] = profiles(applied)
    assert (profile.user_id, profile.external_id, profile.identified) == (user("t1"), None, False)
    assert profile.aliases == [EMAIL] and profile.custom_attributes == {"plan": "pro"}
    assert [e.message.was_parked for e in applied.emitted if e.topic == "membership.resolved"] == [True]


def test_update_existing_only_never_creates_and_is_reported_as_unknown():
    book = Book(WS)
    applied = apply_record(book, tracked("t1", TrackedUser(external_id="u1", update_existing_only=True),
                                         TrackedUser(user_alias=EMAIL, update_existing_only=True)), clock())
    assert applied.emitted == [] and book.profiles == {}
    assert applied.tally.skipped_entries == [(0, "unknown_external_id"), (1, "unknown_alias")]


def test_attributes_keep_their_latest_value_and_null_removes_one():
    book = Book(WS)
    apply_record(book, tracked("t1", TrackedUser(external_id="u1", custom_attributes={"email": "a@x.com", "age": 3})), clock())
    applied = apply_record(book, tracked("t2", TrackedUser(external_id="u1", custom_attributes={"age": None, "city": "Oslo"})),
                           clock())
    [profile] = profiles(applied)
    assert profile.custom_attributes == {"city": "Oslo", "email": "a@x.com"}
    assert book.holder(parse_user_ref("external_id:u1")).attributes == {"city": "Oslo", "email": "a@x.com"}


def test_a_touch_that_changes_nothing_publishes_nothing():
    book = Book(WS)
    apply_record(book, tracked("t1", TrackedUser(external_id="u1", custom_attributes={"plan": "pro"})), clock())
    assert apply_record(book, tracked("t2", TrackedUser(external_id="u1", custom_attributes={"plan": "pro"}),
                                      TrackedUser(external_id="u1")), clock()).emitted == []


def test_braze_id_names_an_existing_profile_only():
    book = Book(WS)
    apply_record(book, tracked("t1", TrackedUser(external_id="u1")), clock())
    known, unknown = user("t1"), "u" + "f" * 23
    applied = apply_record(book, tracked("t2", TrackedUser(braze_id=known, custom_attributes={"plan": "pro"}),
                                         TrackedUser(braze_id=unknown, custom_attributes={"plan": "pro"})), clock())
    assert [(p.user_id, p.external_id, p.custom_attributes) for p in profiles(applied)] == [(known, "u1", {"plan": "pro"})]
    assert applied.tally.skipped_entries == [(1, "unknown_braze_id")]
    assert unknown not in book.profiles


def test_delete_by_braze_id_comes_after_the_other_lists():
    book = Book(WS)
    apply_record(book, tracked("t1", TrackedUser(external_id="u1"), TrackedUser(external_id="u2")), clock())
    request = DeleteRequested(workspace_id=WS, request_id="d1", requested_at=T0, external_ids=["u1"],
                              braze_ids=[user("t1", 1), "u" + "f" * 23])
    applied = apply_record(book, request, clock())
    assert [(e.topic, e.key) for e in applied.emitted if e.message is None] == [
        ("identity.profiles", user("t1")), ("identity.profiles", user("t1", 1))]
    assert applied.tally.skipped_entries == [(2, "unknown_braze_id")]
    assert book.holder(parse_user_ref("external_id:u2")) is None and book.profiles == {}


def test_identified_users_are_still_created_by_external_id():
    book = Book(WS)
    applied = apply_record(book, tracked("t1", TrackedUser(external_id="u1")), clock())
    assert [(p.user_id, p.external_id, p.custom_attributes) for p in profiles(applied)] == [(user("t1"), "u1", {})]
    assert book.holder(parse_user_ref("external_id:u1")) is not None


def test_a_merge_gives_the_kept_profile_the_attributes_it_lacks():
    from cohort_shared.schemas import MergeRequested, MergeUpdate, ProfileIdentifier

    book = Book(WS)
    apply_record(book, tracked("t1", TrackedUser(external_id="kept", custom_attributes={"plan": "pro"}),
                               TrackedUser(external_id="gone", custom_attributes={"plan": "free", "visits": 2})), clock())
    merge = MergeRequested(workspace_id=WS, request_id="m1", requested_at=T0, merge_updates=[MergeUpdate(
        identifier_to_merge=ProfileIdentifier(external_id="gone"), identifier_to_keep=ProfileIdentifier(external_id="kept"))])
    [profile] = profiles(apply_record(book, merge, clock()))
    assert (profile.external_id, profile.custom_attributes) == ("kept", {"plan": "pro", "visits": 2})
