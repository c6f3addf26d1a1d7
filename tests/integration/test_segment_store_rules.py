"""The Lua scripts against the pure rules, on the real Redis (no Kafka needed): random
sequences of imports, merges, deletions, profile updates and tombstones must give the same
events, counts, members and segment results as domain/membership.py and domain/planning.py.
Also measures Redis memory per membership."""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter, defaultdict

import orjson
import pytest
from cohort_shared.redis_store import KeySpace
from cohort_shared.testing import owned_track
from segment_store.adapters.layout import WIDTH, user_to_workspace_key, workspace_base
from segment_store.adapters.scripts import Scripts
from segment_store.adapters.store import Store
from segment_store.domain.events import event_id
from segment_store.domain.filters import AllOf, AnyOf, CohortFilter, Not
from segment_store.domain.membership import Change, Memberships
from segment_store.domain.planning import evaluate_in_memory, plan_filter

pytestmark = pytest.mark.integration
WS = "rules"
NOW = "2026-01-21T14:20:30+00:00"
COHORTS = [("amplitude", "a1"), ("mixpanel", "m1"), ("mixpanel", "m2")]  # sorted: created in this order


class Applier:
    """Calls the tracked batch script directly, as the change stream does, one offset per record."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.scripts = Scripts(client)
        self.base = workspace_base(prefix, WS)
        self.keys = KeySpace(prefix, "segment-store")
        self.tracking = None
        self.offsets = itertools.count()

    async def call(self, script: str, *args) -> list[dict]:
        return (await self.many([(script, args)]))[0]

    async def many(self, calls: list[tuple[str, tuple]]) -> list[list[dict]]:
        await self.scripts.ensure_loaded()
        if self.tracking is None:
            self.tracking = await owned_track(self.client, self.keys, "test", f"{self.base}:eos:test")
        pipe = self.client.pipeline(transaction=False)
        self.scripts.apply.queue(pipe, self.tracking, [self.base],
                                 [(next(self.offsets), script, [NOW, WS, *args]) for script, args in calls])
        (results,) = await pipe.execute()
        return [[orjson.loads(o["value"]) for o in orjson.loads(raw) or []] for raw in results]


def as_change(event: dict) -> Change:
    return Change((event["partner"], event["cohort_id"]), event["user_id"], event["change"], event["cause"])


def random_filter(rng: random.Random, depth: int = 0):
    if depth > 2 or rng.random() < 0.4:
        partner, cohort_ids = rng.choice(COHORTS + [("mixpanel", "nope")])
        return CohortFilter(partner, rng.choice(("includes", "excludes")), (cohort_ids,))
    kind = rng.choice(("all", "any", "not"))
    if kind == "not":
        return Not(random_filter(rng, depth + 1))
    parts = tuple(random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    return AllOf(parts) if kind == "all" else AnyOf(parts)


@pytest.mark.parametrize("seed", range(int(os.environ.get("RULES_SEEDS", 6))))
async def test_the_scripts_follow_the_rules(redis_client, common_settings, seed):
    rng = random.Random(seed)
    applier = Applier(redis_client, common_settings.redis_key_prefix)
    model, universe, tombstoned = Memberships(), set(), set()
    outcomes: Counter = Counter()
    for partner, cohort_id in COHORTS:
        await applier.call("name_cohort", partner, cohort_id, cohort_id.upper())
    users = [f"U{i}" for i in range(14)]
    for step in range(400):
        roll, user = rng.random(), rng.choice(users)
        if roll < 0.70:
            cohort, change = rng.choice(COHORTS), rng.choice(("add", "add", "remove"))
            source = f"s{step}"
            events = await applier.call("apply_change", *cohort, user, f"x{user}", "1", change, source)
            outcome, expected = model.apply_change(cohort, user, change)
            outcomes[cohort, outcome] += 1
            target = model.current(user)
            if target is not None and target not in tombstoned:
                universe.add(target)
            for e in events:
                assert e["event_id"] == event_id(WS, e["partner"], e["cohort_id"], e["user_id"], e["change"],
                                                 e["cause"], source)
        elif roll < 0.82:
            kept = rng.choice(users)
            moves = user not in model.gone and model.current(kept) != user
            events = await applier.call("merge_profiles", user, "", "0", kept, "", "0", f"m{step}")
            expected = model.merge(user, kept)
            if moves:
                universe.discard(user)
                target = model.current(kept)
                if target is not None and target not in tombstoned:
                    universe.add(target)
        elif roll < 0.88:
            events = await applier.call("delete_profile", user, "", "0", f"d{step}")
            expected = model.delete(user)
            universe.discard(user)
        elif roll < 0.95:
            events = await applier.call("update_profile", user, f"x{user}", "1", "[]")
            expected = []
            if user not in model.gone:
                universe.add(user)
                tombstoned.discard(user)
        else:
            events = await applier.call("forget_profile", user)
            expected = []
            universe.discard(user)
            tombstoned.add(user)
        assert [as_change(e) for e in events] == expected, f"seed {seed} step {step}"

    store = Store(redis_client, applier.scripts, common_settings.redis_key_prefix, buckets_per_call=1)
    numbers = {cohort: k for k, cohort in enumerate(COHORTS, start=1)}
    number_of = {}
    for k, cohort in enumerate(COHORTS, start=1):
        members, done = await store.page(WS, [["union", [["cohort", k]]]], 0, 1000)
        assert done and {m.user_id for m in members} == model.members[cohort]
        number_of.update({m.user_id: m.number for m in members})
        fields = (await store.cohort_fields(WS, [k]))[0]
        assert int(fields["mc"]) == len(model.members[cohort])
        assert int(fields.get("ap", 0)) == outcomes[cohort, "applied"]
        assert int(fields.get("al", 0)) == outcomes[cohort, "already_in_state"]
        assert int(fields.get("u:profile_deleted", 0)) == outcomes[cohort, "profile_deleted"]
    assert await store.usage(WS) == sum(n for (_, outcome), n in outcomes.items() if outcome == "applied")

    cohort_members = {numbers[c]: model.members[c] for c in COHORTS}
    for _ in range(25):
        node = random_filter(rng)
        plan = plan_filter(node, numbers).as_json()
        expected = evaluate_in_memory(plan_filter(node, numbers), cohort_members, universe)
        members, _ = await store.page(WS, plan, 0, 1000)
        assert {m.user_id for m in members} == expected, node
        assert await store.size(WS, plan) == len(expected)
        for user, n in number_of.items():
            assert await store.contains(WS, plan, n) == (user in expected)
    leftovers = [k async for k in redis_client.scan_iter(match=f"{applier.base}:tmp:*")]
    assert leftovers == [], "temporary sets never outlive an evaluation"


async def test_listings_and_segments_walk_many_buckets_in_pieces(redis_client, common_settings):
    applier = Applier(redis_client, common_settings.redis_key_prefix)
    rng = random.Random(7)
    users = [f"U{i:05d}" for i in range(4 * WIDTH + 100)]
    in_a = {u for u in users if rng.random() < 0.3}
    in_b = {u for u in users if rng.random() < 0.01}  # sparse: most buckets empty
    calls = [("update_profile", (u, f"x{u}", "1", "[]")) for u in users]
    calls += [("apply_change", ("mixpanel", "a", u, "", "0", "add", f"s{u}")) for u in sorted(in_a)]
    calls += [("apply_change", ("mixpanel", "b", u, "", "0", "add", f"t{u}")) for u in sorted(in_b)]
    for i in range(0, len(calls), 500):
        await applier.many(calls[i:i + 500])
    store = Store(redis_client, applier.scripts, common_settings.redis_key_prefix, buckets_per_call=1)
    cases = {"a": ([["union", [["cohort", 1]]]], in_a), "b": ([["union", [["cohort", 2]]]], in_b),
             "not a": ([["union", [["cohort", 1]]], ["diff", [["all"], ["step", 1]]]], set(users) - in_a)}
    for name, (plan, expected) in cases.items():
        listed, after, done = [], 0, False
        while not done:
            page, done = await store.page(WS, plan, after, 37)
            assert len(page) <= 37
            listed += [m.user_id for m in page]
            after = page[-1].number if page else after
        assert len(listed) == len(set(listed)) and set(listed) == expected, name
        assert await store.size(WS, plan) == len(expected), name
        assert all(m.external_id == f"x{m.user_id}" for m in (await store.page(WS, plan, 0, 50))[0])


@pytest.mark.slow
@pytest.mark.parametrize(("users", "cohorts"), [(20_000, 10), (200_000, 1)])
async def test_redis_memory_per_membership(redis_client, common_settings, users, cohorts, capsys):
    """200k memberships, two shapes: MEMORY USAGE summed over the workspace's keys, split into
    what profiles cost (numbering, records, the user_ref index) and what memberships add."""
    applier = Applier(redis_client, common_settings.redis_key_prefix)
    ids = [f"u{i:023x}" for i in range(users)]  # identity-resolution's shape: "u" + 23 hex

    async def apply_all(calls):
        for i in range(0, len(calls), 2000):
            await applier.many(calls[i:i + 2000])

    async def usage_by_kind() -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        async for key in redis_client.scan_iter(match=f"{common_settings.redis_key_prefix}segment-store:*", count=5000):
            text = key.decode()
            kind = text[len(applier.base) + 1:].split(":")[0] if text.startswith(applier.base) else "user-workspace"
            totals[kind] += await redis_client.memory_usage(key, samples=0) or 0
        totals.pop("eos", None)  # tracking: one key per partition; outbox entries go once committed
        return totals

    await apply_all([("update_profile", (u, f"ext-{i}", "1", "[]")) for i, u in enumerate(ids)])
    pipe = redis_client.pipeline(transaction=False)
    for u in ids:  # what the change stream writes beside each profile update, for tombstones
        pipe.hset(user_to_workspace_key(common_settings.redis_key_prefix, u), u, WS)
    await pipe.execute()
    profiles = await usage_by_kind()
    await apply_all([("apply_change", ("mixpanel", f"c{c}", u, f"ext-{i}", "1", "add", f"s{c}-{i}"))
                     for c in range(cohorts) for i, u in enumerate(ids)])
    after = await usage_by_kind()
    memberships = users * cohorts
    membership_bytes = sum(after.values()) - sum(profiles.values())
    profile_bytes = sum(profiles.values())
    with capsys.disabled():
        print(f"\n{users:,} users x {cohorts} cohorts = {memberships:,} memberships: "
              f"memberships {membership_bytes / memberships:.1f} B each (member sets, reverse index, counters); "
              f"profile index {profile_bytes / users:.1f} B per profile; together "
              f"{(membership_bytes + profile_bytes) / memberships:.1f} B per membership. "
              f"By kind: {dict(sorted(after.items()))}")
    assert membership_bytes / memberships < 100


async def test_a_merge_costs_the_same_per_cohort_however_many_cohorts_a_user_is_in(redis_client, common_settings):
    """Merging (or deleting) a user in k cohorts is k changes; each must cost the same
    whatever k is, or one merge of a heavy user blocks Redis for everyone (BUSY). Measured by
    Redis itself (commandstats), k = 200 against k = 2,000: linear is about 10×, quadratic
    about 100×."""
    applier = Applier(redis_client, common_settings.redis_key_prefix)

    async def merge_cost(k: int, tag: str) -> float:
        merged, kept = f"heavy-{tag}", f"kept-{tag}"
        for start in range(0, k, 200):
            await applier.many([("apply_change", ("mixpanel", f"{tag}-{c}", merged, "", "0", "add", f"s{c}"))
                                for c in range(start, min(k, start + 200))])
        before = await redis_client.info("commandstats")
        events = await applier.call("merge_profiles", merged, "", "0", kept, "", "0", f"merge-{tag}")
        after = await redis_client.info("commandstats")
        assert len(events) == 2 * k  # k additions of the kept user, then k removals of the merged one
        return after["cmdstat_evalsha"]["usec"] - before["cmdstat_evalsha"]["usec"]

    # The least of a few runs: what the work costs, without what a busy machine adds to it.
    small = min([await merge_cost(200, f"a{run}") for run in range(3)])
    large = min([await merge_cost(2000, f"b{run}") for run in range(2)])
    print(f"merge of 200 cohorts: {small} µs, of 2,000: {large} µs ({large / small:.1f}×)")
    assert large < 35 * small, f"merge of 2,000 cohorts took {large} µs, of 200 cohorts {small} µs"
