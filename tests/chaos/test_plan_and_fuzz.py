"""The fault plan and the reading of schemathesis's answers."""

from __future__ import annotations

import random
from collections import Counter

from tests.chaos.faults import plan_faults
from tests.chaos.fuzz import FuzzResult, analyse_har, names_something
from tests.chaos.profiles import FULL


def test_the_full_plan_has_every_fault_spread_over_the_import():
    plan = plan_faults(FULL.faults, 400, random.Random(3))
    counts = Counter(f.kind for f in plan)
    assert counts["kill_identity"] >= 10 and counts["kill_segment"] >= 10 and counts["kill_ingest"] >= 5
    assert {"kill_broker", "kill_redis", "redis_read_only", "freeze_segment", "poison"} <= set(counts)
    assert all(20 <= f.at <= 340 for f in plan)
    kills = sorted(f.at for f in plan if f.kind == "kill_segment")
    assert kills[0] < 50 and kills[-1] > 290, "spread from start to end, not bunched"
    assert plan == plan_faults(FULL.faults, 400, random.Random(3)), "the seed reproduces the plan"


def har(*answers: tuple[int, str]) -> dict:
    return {"log": {"entries": [{"request": {"method": "GET", "url": "http://x/p"},
                                 "response": {"status": status, "content": {"text": text}}} for status, text in answers]}}


def test_fuzz_answers_are_counted():
    result = analyse_har(har((200, "{}"), (400, '{"message": "cohort_id must be a valid string"}'),
                             (405, '{"detail": "Method Not Allowed"}'), (404, "not json"), (500, "boom"),
                             (422, '{"message": ""}')), FuzzResult("s"))
    assert (result.requests, result.server_errors, result.refusals_without_message) == (6, 1, 3)
    assert names_something('{"message": "x"}') and not names_something("[]")
