"""The builder's rows spelled as segment-store filters."""

import pytest
from console.domain.segment_filters import BuilderError, Row, build_filter, cohorts_key, describe, parse_rows


def test_partner_keys_are_spelled_as_braze_does():
    assert cohorts_key("mixpanel") == "Mixpanel_Cohorts"
    assert cohorts_key("amplitude") == "Amplitude_Cohorts"


def test_rows_come_from_the_form_and_blank_rows_are_skipped():
    rows = parse_rows(["includes", "excludes", "includes"], ["mixpanel/mp_1", "amplitude/a/b", ""])
    assert rows == [Row("mixpanel", "includes", "mp_1"), Row("amplitude", "excludes", "a/b")]


@pytest.mark.parametrize(("modes", "choices", "message"), [
    (["includes"], ["mp_1"], "row 1: choose a cohort"),
    (["includes"], ["/mp_1"], "row 1: choose a cohort"),
    (["both"], ["mixpanel/mp_1"], "row 1: mode must be includes or excludes"),
    (["includes", "includes"], ["mixpanel/x"], "every row needs a mode and a cohort"),
])
def test_malformed_rows_are_refused(modes, choices, message):
    with pytest.raises(BuilderError, match=message):
        parse_rows(modes, choices)


CHURN = Row("mixpanel", "includes", "mp_churn")
VIP = Row("mixpanel", "excludes", "mp_vip")


def test_one_row_is_its_own_filter():
    assert build_filter([CHURN], "all") == {"Mixpanel_Cohorts": {"includes": ["mp_churn"]}}
    assert build_filter([CHURN], "any") == {"Mixpanel_Cohorts": {"includes": ["mp_churn"]}}
    assert build_filter([CHURN], "not") == {"not": {"Mixpanel_Cohorts": {"includes": ["mp_churn"]}}}


def test_rows_combine_with_all_any_or_not():
    parts = [{"Mixpanel_Cohorts": {"includes": ["mp_churn"]}}, {"Mixpanel_Cohorts": {"excludes": ["mp_vip"]}}]
    assert build_filter([CHURN, VIP], "all") == {"all": parts}
    assert build_filter([CHURN, VIP], "any") == {"any": parts}
    assert build_filter([CHURN, VIP], "not") == {"not": {"any": parts}}


def test_no_rows_is_no_filter_and_an_unknown_combination_is_refused():
    assert build_filter([], "all") is None
    with pytest.raises(BuilderError):
        build_filter([CHURN], "xor")


def test_the_reading_names_the_cohorts():
    names = {("mixpanel", "mp_churn"): "Churn risk"}
    assert describe([CHURN, VIP], "all", names) == 'Mixpanel_Cohorts includes "Churn risk" and Mixpanel_Cohorts excludes "mp_vip"'
    assert describe([CHURN], "not", names) == 'not (Mixpanel_Cohorts includes "Churn risk")'
    assert describe([], "all", names) == "no rows yet"
