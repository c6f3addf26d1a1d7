"""Pages of lists: every item once, in order, cursors tied to their listing."""

import pytest
from cohort_shared.paging import BadPage, page


def walk(items, limit, listing="cohorts:w1"):
    seen, cursor = [], None
    while True:
        chosen, cursor = page(items, str, listing, cursor, limit)
        seen.append(chosen)
        if cursor is None:
            return seen


def test_every_item_once_in_order():
    items = [f"c{i:03d}" for i in range(250)]
    pages = walk(list(reversed(items)), 100)
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [x for p in pages for x in p] == items


def test_an_exact_multiple_ends_without_an_empty_page():
    assert [len(p) for p in walk([f"k{i}" for i in range(4)], 2)] == [2, 2]


def test_items_added_behind_the_cursor_are_not_listed_twice():
    items = ["a", "b", "c", "d"]
    first, cursor = page(items, str, "l", None, 2)
    second, _ = page(items + ["aa"], str, "l", cursor, 2)
    assert first + second == ["a", "b", "c", "d"]


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_limit_out_of_range_is_refused(limit):
    with pytest.raises(BadPage, match="limit must be between 1 and 1000"):
        page(["a"], str, "l", None, limit)


def test_a_cursor_of_another_listing_or_garbage_is_refused():
    _, cursor = page(["a", "b", "c"], str, "cohorts:w1", None, 1)
    with pytest.raises(BadPage, match="cursor"):
        page(["a"], str, "cohorts:w2", cursor, 1)
    with pytest.raises(BadPage, match="cursor"):
        page(["a"], str, "cohorts:w1", "not-a-cursor!", 1)
