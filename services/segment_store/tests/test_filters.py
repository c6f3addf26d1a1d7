"""Segment filter validation: what parses, and the 400 message naming what is wrong."""

import pytest
from segment_store.domain.errors import Invalid
from segment_store.domain.filters import (
    AllOf,
    AnyOf,
    CohortFilter,
    Not,
    cohorts_named,
    parse_filter,
    parse_segment_name,
    partner_of,
)


def test_partner_names_map_to_partners():
    assert partner_of("Mixpanel_Cohorts") == "mixpanel"
    assert partner_of("Amplitude_Cohorts") == "amplitude"
    assert partner_of("Hightouch_Cohorts") == "hightouch"
    assert partner_of("Mixpanel") is None
    assert partner_of("_Cohorts") is None


def test_a_nested_filter_parses_to_its_tree():
    raw = {"all": [
        {"Mixpanel_Cohorts": {"includes": ["mp_1", "mp_2", "mp_1"]}},
        {"not": {"Amplitude_Cohorts": {"excludes": ["a_1"]}}},
        {"any": [{"Mixpanel_Cohorts": {"includes": ["mp_3"]}}]},
    ]}
    assert parse_filter(raw) == AllOf((
        CohortFilter("mixpanel", "includes", ("mp_1", "mp_2")),
        Not(CohortFilter("amplitude", "excludes", ("a_1",))),
        AnyOf((CohortFilter("mixpanel", "includes", ("mp_3",)),)),
    ))
    assert cohorts_named(parse_filter(raw)) == {("mixpanel", "mp_1"), ("mixpanel", "mp_2"), ("amplitude", "a_1"),
                                                 ("mixpanel", "mp_3")}


@pytest.mark.parametrize(("raw", "message"), [
    (None, "filter must be an object with exactly one key"),
    ({}, "filter must be an object with exactly one key"),
    ({"all": [], "any": []}, "filter must be an object with exactly one key"),
    ({"Mixpanel": {"includes": ["x"]}}, "filter: unknown key 'Mixpanel'"),
    ({"all": []}, "filter.all must be a non-empty list of filters"),
    ({"any": {"x": 1}}, "filter.any must be a non-empty list of filters"),
    ({"not": []}, "filter.not must be an object with exactly one key"),
    ({"all": [{"Mixpanel_Cohorts": {"include": ["x"]}}]},
     "filter.all[0].Mixpanel_Cohorts must be an object with exactly one key: includes or excludes"),
    ({"Mixpanel_Cohorts": {"includes": ["x"], "excludes": ["y"]}},
     "filter.Mixpanel_Cohorts must be an object with exactly one key: includes or excludes"),
    ({"Mixpanel_Cohorts": {"includes": []}}, "filter.Mixpanel_Cohorts.includes must be a non-empty list"),
    ({"Mixpanel_Cohorts": {"excludes": "mp_1"}}, "filter.Mixpanel_Cohorts.excludes must be a non-empty list"),
    ({"any": [{"not": {"Mixpanel_Cohorts": {"includes": ["ok", 7]}}}]},
     "filter.any[0].not.Mixpanel_Cohorts.includes[1] must be a cohort ID"),
    ({"Mixpanel_Cohorts": {"includes": [""]}}, "filter.Mixpanel_Cohorts.includes[0] must be a cohort ID"),
])
def test_an_invalid_filter_is_refused_naming_what_is_wrong(raw, message):
    with pytest.raises(Invalid) as refused:
        parse_filter(raw)
    assert refused.value.message.startswith(message), refused.value.message
    assert refused.value.status == 400


def test_filters_nest_and_name_cohorts_within_limits():
    deep = {"Mixpanel_Cohorts": {"includes": ["x"]}}
    for _ in range(10):
        deep = {"not": deep}
    with pytest.raises(Invalid, match="nest at most 10 deep"):
        parse_filter(deep)
    many = {"any": [{"Mixpanel_Cohorts": {"includes": [f"c{i}-{j}" for j in range(30)]}} for i in range(4)]}
    with pytest.raises(Invalid, match="at most 100 cohorts"):
        parse_filter(many)


def test_segment_names_are_non_empty_strings():
    assert parse_segment_name("Churn risk") == "Churn risk"
    for bad in (None, "", "  ", 5, "x" * 513):
        with pytest.raises(Invalid, match="name must"):
            parse_segment_name(bad)
