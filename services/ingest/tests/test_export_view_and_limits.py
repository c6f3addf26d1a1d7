"""The pure parts behind the Braze REST API: the export view's rules, Braze's rate-limit
quota and budget groups, permissions by path."""

from datetime import UTC, datetime

import pytest
from cohort_shared import schemas as s
from ingest.domain.export_view import SEP, ViewSlice
from ingest.domain.rate_limit import Limit, quota_after
from ingest.domain.rest_api_keys import RATE_GROUPS, parse_rate_limits, permission_of

NOW = datetime(2026, 1, 21, tzinfo=UTC)
ADA = "u" + "a" * 23


def profile(user_id: str = ADA, external_id: str | None = "ada", aliases=(), attributes=None) -> s.ProfileUpdated:
    return s.ProfileUpdated(workspace_id="acme", user_id=user_id, external_id=external_id, identified=external_id is not None,
                            aliases=[s.Alias(alias_label=label, alias_name=name) for label, name in aliases],
                            device_ids=["d1"], custom_attributes=attributes or {}, updated_at=NOW)


def test_a_profile_is_indexed_by_its_identifiers_and_its_email_and_phone():
    view = ViewSlice("acme")
    view.profile_updated(profile(aliases=[("email", "a@x.com")], attributes={"email": "A@X.com", "phone": "+47"}))
    assert view.holders == {f"x{SEP}ada": ADA, f"a{SEP}email{SEP}a@x.com": ADA, f"d{SEP}d1": ADA}
    assert view.shared == {(f"e{SEP}a@x.com", ADA): True, (f"p{SEP}+47", ADA): True}
    assert view.profiles[ADA] == {"x": "ada", "a": [["email", "a@x.com"]], "d": ["d1"],
                                  "t": {"email": "A@X.com", "phone": "+47"}} and view.homes == {ADA: "acme"}


def test_an_update_unindexes_what_the_profile_lost_but_not_what_another_profile_took():
    view = ViewSlice("acme")
    view.profile_updated(profile(aliases=[("email", "a@x.com"), ("crm", "7")], attributes={"email": "a@x.com"}))
    view.holders[f"a{SEP}crm{SEP}7"] = "u" + "b" * 23  # another profile holds it now
    view.profile_updated(profile(external_id="ada2", aliases=[], attributes={}))
    assert view.holders[f"x{SEP}ada"] is None and view.holders[f"x{SEP}ada2"] == ADA
    assert view.holders[f"a{SEP}email{SEP}a@x.com"] is None and view.holders[f"a{SEP}crm{SEP}7"] == "u" + "b" * 23
    assert view.shared[f"e{SEP}a@x.com", ADA] is False


def test_a_tombstone_forgets_the_profile_and_unindexes_it():
    view = ViewSlice("acme")
    view.profile_updated(profile())
    view.profile_gone(ADA)
    assert view.profiles[ADA] is None and view.homes[ADA] is None
    assert view.holders[f"x{SEP}ada"] is None and ADA in view.dirty_profiles


def test_the_quota_counts_down_and_resets_at_the_window_end():
    limit = Limit(2, 60)
    assert quota_after(1, limit, 125.0) == quota_after(1, limit, 179.9)
    first, over = quota_after(1, limit, 125.0), quota_after(3, limit, 125.0)
    assert (first.remaining, first.reset_epoch, first.retry_after) == (1, 180, None)
    assert (over.remaining, over.retry_after) == (0, 55)
    assert over.headers() == {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "180"}


def test_rate_limits_default_to_brazes_and_are_overridden_by_group():
    assert parse_rate_limits("") == {"users.track": (3000, 3), "users.profiles": (20000, 60),
                                     "users.export.ids": (2500, 60)}
    assert parse_rate_limits(" users.profiles = 5/1 ")["users.profiles"] == (5, 1)
    for bad in ("users.fly=1/1", "users.merge=1/1", "users.track=1", "users.track=0/1", "users.track=x/1"):
        with pytest.raises(ValueError):
            parse_rate_limits(bad)
    assert {RATE_GROUPS[p] for p in ("users.alias.new", "users.identify", "users.merge", "users.delete")} == {"users.profiles"}


def test_a_path_names_its_permission():
    assert permission_of("/users/export/ids") == "users.export.ids" and permission_of("/users/alias/new") == "users.alias.new"
