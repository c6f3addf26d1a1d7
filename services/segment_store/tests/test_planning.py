"""Evaluation planning: a filter becomes set algebra steps; run on Python sets they give what
the filter means (the Redis evaluation runs the same plan per bucket, tested on the real Redis)."""

from hypothesis import given
from hypothesis import strategies as st
from segment_store.domain.filters import AllOf, AnyOf, CohortFilter, Filter, Not, parse_filter
from segment_store.domain.planning import Step, evaluate_in_memory, plan_filter

NUMBERS = {("mixpanel", "a"): 1, ("mixpanel", "b"): 2, ("amplitude", "a"): 3}
COHORTS = {1: {"u1", "u2"}, 2: {"u2", "u3"}, 3: {"u4"}}
EVERYONE = {"u1", "u2", "u3", "u4", "u5"}


def run(raw: dict) -> set[str]:
    return evaluate_in_memory(plan_filter(parse_filter(raw), NUMBERS), COHORTS, EVERYONE)


def test_includes_is_a_union_of_the_listed_cohorts():
    plan = plan_filter(parse_filter({"Mixpanel_Cohorts": {"includes": ["a", "b"]}}), NUMBERS)
    assert plan.steps == [Step("union", (("cohort", 1), ("cohort", 2)))]
    assert run({"Mixpanel_Cohorts": {"includes": ["a", "b"]}}) == {"u1", "u2", "u3"}


def test_excludes_and_not_are_relative_to_every_profile():
    plan = plan_filter(parse_filter({"Mixpanel_Cohorts": {"excludes": ["a"]}}), NUMBERS)
    assert plan.steps == [Step("diff", (("all",), ("cohort", 1)))]
    assert run({"Mixpanel_Cohorts": {"excludes": ["a"]}}) == {"u3", "u4", "u5"}
    assert run({"not": {"Mixpanel_Cohorts": {"includes": ["a"]}}}) == {"u3", "u4", "u5"}


def test_partners_keep_their_cohorts_apart():
    assert run({"Amplitude_Cohorts": {"includes": ["a"]}}) == {"u4"}


def test_all_any_combine_earlier_steps():
    raw = {"all": [{"Mixpanel_Cohorts": {"includes": ["a"]}}, {"Mixpanel_Cohorts": {"includes": ["b"]}}]}
    plan = plan_filter(parse_filter(raw), NUMBERS)
    assert plan.steps[-1] == Step("inter", (("step", 1), ("step", 2)))
    assert run(raw) == {"u2"}
    assert run({"any": [{"Amplitude_Cohorts": {"includes": ["a"]}}, {"Mixpanel_Cohorts": {"includes": ["b"]}}]}) == {
        "u2", "u3", "u4"}


def test_cohorts_that_do_not_exist_yet_are_empty():
    plan = plan_filter(parse_filter({"Mixpanel_Cohorts": {"includes": ["nope"]}}), NUMBERS)
    assert plan.steps == [Step("union", (("none",),))]
    assert run({"Mixpanel_Cohorts": {"includes": ["nope"]}}) == set()
    assert run({"Mixpanel_Cohorts": {"excludes": ["nope"]}}) == EVERYONE


def test_plans_serialize_for_the_lua_evaluator():
    plan = plan_filter(parse_filter({"not": {"Mixpanel_Cohorts": {"includes": ["a"]}}}), NUMBERS)
    assert plan.as_json() == [["union", [["cohort", 1]]], ["diff", [["all"], ["step", 1]]]]


def meaning(node: Filter) -> set[str]:
    """What a filter means, said directly (independently of the planner)."""
    if isinstance(node, CohortFilter):
        listed = set().union(*(COHORTS.get(NUMBERS.get((node.partner, c), 0), set()) for c in node.cohort_ids))
        return listed if node.mode == "includes" else EVERYONE - listed
    if isinstance(node, Not):
        return EVERYONE - meaning(node.part)
    parts = [meaning(p) for p in node.parts]
    return set.intersection(*parts) if isinstance(node, AllOf) else set().union(*parts)


leaves = st.builds(
    CohortFilter, st.sampled_from(["mixpanel", "amplitude"]), st.sampled_from(["includes", "excludes"]),
    st.lists(st.sampled_from(["a", "b", "zz"]), min_size=1, max_size=3, unique=True).map(tuple),
)
filters = st.recursive(leaves, lambda inner: st.one_of(
    st.builds(Not, inner),
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs))),
    st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
), max_leaves=8)


@given(filters)
def test_any_plan_computes_what_its_filter_means(node):
    assert evaluate_in_memory(plan_filter(node, NUMBERS), COHORTS, EVERYONE) == meaning(node)
