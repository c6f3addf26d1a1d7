"""segment-store's rules through its real handler and store, on the real Redis, across tasks:
random imports, merges, deletions and profile updates against a reference model kept in this
test (an independent statement of docs/segments.md, docs/events.md); listings and segments walking many buckets;
Redis memory per membership; a merge's cost growing linearly with the cohorts it moves; a task's
state moved from key layout 1 into layout 2."""

from __future__ import annotations

import functools
import os
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import TopicPartition
from cohort_shared import schemas as s
from cohort_shared.publishing import partition_for
from cohort_shared.schemas import cohort_key
from cohort_shared.state.client import connect_state, server_info, used_memory
from cohort_shared.state.commit import Commit
from cohort_shared.state.lua_script import ScriptCalls
from cohort_shared.stream.service import TaskContext, TaskNotReady
from cohort_shared.user_refs import UserRef
from segment_store.adapters.layout import LAYOUT, cohort_code, decode_entry
from segment_store.adapters.migration import GONE, MOVED, LayoutMigration, NewerLayout
from segment_store.adapters.store import Store
from segment_store.adapters.task_store import TaskStore
from segment_store.domain.events import event_id
from segment_store.domain.filters import AllOf, AnyOf, CohortFilter, Not
from segment_store.domain.planning import evaluate_in_memory, plan_filter
from segment_store.entrypoints.stream import ProfileTombstone, segment_service
from segment_store.settings import SegmentSettings

pytestmark = pytest.mark.integration
WS = "rules"
TASKS = 3
COHORTS = [("amplitude", "a1"), ("mixpanel", "m1"), ("mixpanel", "m2")]


class Tasks:
    """The service's handler run task by task, as the engine runs it, each task's writes
    committed through the generic commit; handovers routed to their tasks until none is left."""

    def __init__(self, settings, client) -> None:
        self.settings, self.client = settings, client
        self.store = TaskStore(client, settings.redis_key_prefix)
        self.handler = segment_service(settings, self.store).handlers[0][1]
        self.commit = Commit(client)
        self.offsets: Counter = Counter()
        self.events: list[dict] = []
        self.delayed: list = []

    async def start(self) -> None:
        await self.commit.ensure_loaded()
        for task in range(TASKS):
            await self.commit.claim(self.store.layout(task).task, "tests")

    @staticmethod
    def task_of(message) -> int:
        if isinstance(message, s.MembershipResolvedBatch):
            return partition_for(message.rows[0][2].encode(), TASKS)
        if isinstance(message, ProfileTombstone):
            return partition_for(message.user_id.encode(), TASKS)
        return partition_for(message.kafka_key(), TASKS)

    async def apply(self, *messages, delay_handovers: bool = False) -> list[dict]:
        """Apply `messages` (and every handover they lead to); the events they published. With
        `delay_handovers`, the merged profiles' cohorts stay in `delayed`, as if late."""
        pending, events = list(messages), []
        while pending:
            message = pending.pop(0)
            task = self.task_of(message)
            ctx = TaskContext(task, self.store.layout(task).task, self.client, self.settings,
                              datetime.now(UTC), {"membership.resolved": TASKS})
            await self.handler(ctx, [message])
            self.offsets[task] += 1
            calls = ScriptCalls(self.client)
            self.commit.queue(calls, ctx.keys, "tests", {TopicPartition("in", task): (self.offsets[task],) * 2},
                              ctx.writes, ctx.outputs)
            assert await calls.run() == [1]
            await self.commit.forget_outboxes([(ctx.keys, "tests")])  # as the engine does once Kafka has them
            for topic, _, _, value, *_ in ctx.outputs:
                if topic.endswith("membership.changes"):
                    events.append(orjson.loads(value))
                elif topic.endswith("segment.handovers"):
                    handover = s.decode("segment.handovers", value)
                    late = delay_handovers and isinstance(handover, s.MembershipsHandedOver)
                    (self.delayed if late else pending).append(handover)
        self.events += events
        return events


def resolved(user: str, cohort: tuple[str, str], change: str, source: str) -> s.MembershipResolvedBatch:
    return s.MembershipResolvedBatch(workspace_id=WS, resolved_at=datetime.now(UTC),
                                     rows=[(*cohort, user, f"x{user}", change, source, 0, False)])


def merge(merged: str, kept: str, source: str) -> list:
    """A merge as identity-resolution publishes it: announced to the kept profile first."""
    return [s.ProfileMergeAnnounced(workspace_id=WS, merged_user_id=merged, kept_user_id=kept, source_id=source),
            s.ProfilesMerged(workspace_id=WS, merged_user_id=merged, kept_user_id=kept, source_id=source,
                             merged_at=datetime.now(UTC))]


def delete(user: str, source: str) -> s.ProfileDeleted:
    return s.ProfileDeleted(workspace_id=WS, user_id=user, source_id=source, deleted_at=datetime.now(UTC))


def profile(user: str) -> s.ProfileUpdated:
    return s.ProfileUpdated(workspace_id=WS, user_id=user, external_id=f"x{user}", identified=True,
                            updated_at=datetime.now(UTC))


class Reference:
    """docs/segments.md, docs/events.md stated plainly: members per cohort, profiles gone by merge or deletion."""

    def __init__(self) -> None:
        self.members: dict[tuple, set[str]] = defaultdict(set)
        self.gone: dict[str, str | None] = {}
        self.counts: Counter = Counter()

    def current(self, user: str) -> str | None:
        while user in self.gone:
            user = self.gone[user]
            if user is None:
                return None
        return user

    def cohorts(self, user: str) -> list[tuple]:
        return sorted(c for c, members in self.members.items() if user in members)

    def change(self, cohort, user, change, source) -> list[tuple]:
        target = self.current(user)
        if target is None:
            self.counts[cohort, "u:profile_deleted"] += 1
            return []
        if (target in self.members[cohort]) == (change == "add"):
            self.counts[cohort, "al"] += 1
            return []
        (self.members[cohort].add if change == "add" else self.members[cohort].discard)(target)
        self.counts[cohort, "ap"] += 1
        return [(cohort, target, "added" if change == "add" else "removed", "cohort_import", source)]

    def merge(self, merged, kept, source) -> list[tuple]:
        if merged in self.gone or self.current(kept) == merged:
            return []
        moving, target = self.cohorts(merged), self.current(kept)
        gains = [] if target is None else [c for c in moving if target not in self.members[c]]
        for c in gains:
            self.members[c].add(target)
        for c in moving:
            self.members[c].discard(merged)
        self.gone[merged] = target
        return [(c, target, "added", "merge", source) for c in gains] + \
            [(c, merged, "removed", "merge", source) for c in moving]

    def delete(self, user, source) -> list[tuple]:
        if user in self.gone:
            return []
        leaving = self.cohorts(user)
        for c in leaving:
            self.members[c].discard(user)
        self.gone[user] = None
        return [(c, user, "removed", "delete", source) for c in leaving]


def as_tuple(event: dict) -> tuple:
    return ((event["partner"], event["cohort_id"]), event["user_id"], event["change"], event["cause"])


@pytest.fixture
async def tasks(common_settings):
    client = connect_state(common_settings, socket_timeout=10)
    runner = Tasks(SegmentSettings(**common_settings.model_dump(by_alias=False)), client)
    await runner.start()
    yield runner
    async for key in client.scan_iter(match=f"{common_settings.redis_key_prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


def random_filter(rng: random.Random, depth: int = 0):
    if depth > 2 or rng.random() < 0.4:
        partner, cohort_id = rng.choice(COHORTS + [("mixpanel", "nope")])
        return CohortFilter(partner, rng.choice(("includes", "excludes")), (cohort_id,))
    kind = rng.choice(("all", "any", "not"))
    if kind == "not":
        return Not(random_filter(rng, depth + 1))
    parts = tuple(random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    return AllOf(parts) if kind == "all" else AnyOf(parts)


@pytest.mark.parametrize("seed", range(int(os.environ.get("RULES_SEEDS", 4))))
async def test_the_handler_and_store_follow_the_rules(tasks, common_settings, seed):
    rng = random.Random(seed)
    model, universe, tombstoned = Reference(), set(), set()
    users = [f"U{i}" for i in range(14)]
    for step in range(300):
        roll, user = rng.random(), rng.choice(users)
        if roll < 0.70:
            cohort, change, source = rng.choice(COHORTS), rng.choice(("add", "add", "remove")), f"s{step}"
            events = await tasks.apply(resolved(user, cohort, change, source))
            expected = model.change(cohort, user, change, source)
            target = model.current(user)
            if target is not None and target not in tombstoned:
                universe.add(target)
            for e in events:
                assert e["event_id"] == event_id(WS, e["partner"], e["cohort_id"], e["user_id"], e["change"],
                                                 e["cause"], source)
        elif roll < 0.82:
            # identity-resolution merges two current profiles, never one already gone
            current = [u for u in users if u not in model.gone and u != user]
            if user in model.gone or not current:
                continue
            kept = rng.choice(current)
            moves = True
            events = await tasks.apply(*merge(user, kept, f"m{step}"))
            expected = model.merge(user, kept, f"m{step}")
            if moves:
                universe.discard(user)
        elif roll < 0.88:
            events = await tasks.apply(delete(user, f"d{step}"))
            expected = model.delete(user, f"d{step}")
            universe.discard(user)
        elif roll < 0.95:
            events = await tasks.apply(profile(user))
            expected = []
            if user not in model.gone:
                universe.add(user)
                tombstoned.discard(user)
        else:
            events = await tasks.apply(profile(user), ProfileTombstone(user))
            expected = []
            universe.discard(user)
            tombstoned.add(user)
        assert [as_tuple(e) for e in events] == [e[:4] for e in expected], f"seed {seed} step {step}"

    store = Store(tasks.client, common_settings.redis_key_prefix, TASKS, buckets_per_call=1)
    reports = await store.reports(WS, [cohort_code(*c) for c in COHORTS])
    for cohort in COHORTS:
        code = cohort_code(*cohort)
        members, done = await store.page(WS, [["union", [["cohort", code]]]], 0, 1000)
        assert done and {m.user_id for m in members} == model.members[cohort]
        assert reports[code].get("mc", 0) == len(model.members[cohort])
        for name in ("ap", "al", "u:profile_deleted"):
            assert reports[code].get(name, 0) == model.counts[cohort, name], (cohort, name)
    assert await store.usage(WS) == sum(n for (_, name), n in model.counts.items() if name == "ap")

    codes = {c: cohort_code(*c) for c in COHORTS + [("mixpanel", "nope")]}
    cohort_members = {codes[c]: model.members[c] for c in COHORTS}
    for _ in range(20):
        node = random_filter(rng)
        plan = plan_filter(node, codes)
        expected = evaluate_in_memory(plan, cohort_members, universe)
        members, _ = await store.page(WS, plan.as_json(), 0, 1000)
        assert {m.user_id for m in members} == expected, node
        assert await store.size(WS, plan.as_json()) == len(expected)
    leftovers = [k async for k in tasks.client.scan_iter(match=f"{common_settings.redis_key_prefix}*tmp*")]
    assert leftovers == [], "temporary sets never outlive an evaluation"
    waits = [k async for k in tasks.client.scan_iter(match=f"{common_settings.redis_key_prefix}*:wait:*")]
    assert waits == [], "every merge announced arrived, so nothing waits"


async def test_a_kept_profile_deleted_before_the_merged_cohorts_arrive_gains_them_then_loses_them(tasks):
    A, B = COHORTS[0], COHORTS[1]
    await tasks.apply(resolved("m", A, "add", "s1"), resolved("m", B, "add", "s2"), resolved("k", B, "add", "s3"))
    assert await tasks.apply(*merge("m", "k", "m1"), delay_handovers=True) == []
    assert await tasks.apply(delete("k", "d1")) == [], "held until the cohorts of m arrive"
    events = await tasks.apply(*tasks.delayed)
    assert [as_tuple(e) for e in events] == [
        (A, "k", "added", "merge"),
        (A, "k", "removed", "delete"), (B, "k", "removed", "delete"),
        (A, "m", "removed", "merge"), (B, "m", "removed", "merge")]


async def test_an_onward_merge_waits_so_each_profile_of_a_chain_passes_the_cohorts_on(tasks):
    A, B = COHORTS[0], COHORTS[1]
    await tasks.apply(resolved("m", A, "add", "s1"), resolved("k", B, "add", "s2"))
    await tasks.apply(*merge("m", "k", "m1"), delay_handovers=True)
    assert await tasks.apply(*merge("k", "j", "m2")) == []
    late, tasks.delayed = tasks.delayed, []
    events = await tasks.apply(*late)
    assert sorted(as_tuple(e) for e in events) == sorted([
        (A, "k", "added", "merge"), (A, "m", "removed", "merge"),
        (A, "j", "added", "merge"), (B, "j", "added", "merge"),
        (A, "k", "removed", "merge"), (B, "k", "removed", "merge")])
    store = Store(tasks.client, tasks.settings.redis_key_prefix, TASKS, buckets_per_call=1)
    for cohort in (A, B):
        members, _ = await store.page(WS, [["union", [["cohort", cohort_code(*cohort)]]]], 0, 10)
        assert [m.user_id for m in members] == ["j"]


async def test_listings_and_segments_walk_many_buckets_in_pieces(tasks, common_settings):
    users = [f"V{i:05d}" for i in range(3000)]
    in_a, in_b = set(users[::2]), set(users[::3])
    for cohort, members in ((("mixpanel", "a"), in_a), (("mixpanel", "b"), in_b)):
        by_task = defaultdict(list)
        for u in sorted(members):
            by_task[partition_for(u.encode(), TASKS)].append((*cohort, u, None, "add", f"s{u}", 0, False))
        for rows in by_task.values():
            await tasks.apply(s.MembershipResolvedBatch(workspace_id=WS, resolved_at=datetime.now(UTC), rows=rows))
    store = Store(tasks.client, common_settings.redis_key_prefix, TASKS, buckets_per_call=1)
    plan = plan_filter(AllOf((CohortFilter("mixpanel", "includes", ("a",)),
                              Not(CohortFilter("mixpanel", "includes", ("b",))))),
                       {("mixpanel", "a"): cohort_code("mixpanel", "a"),
                        ("mixpanel", "b"): cohort_code("mixpanel", "b")}).as_json()
    seen, after = [], 0
    while True:
        members, done = await store.page(WS, plan, after, 97)
        seen += [m.user_id for m in members]
        if done:
            break
        after = members[-1].place
    assert len(seen) == len(set(seen)) and set(seen) == in_a - in_b
    assert await store.size(WS, plan) == len(in_a - in_b)


@pytest.mark.parametrize(("users", "cohorts"), [(20_000, 10), (200_000, 1)])
async def test_redis_memory_per_membership(tasks, users, cohorts, capsys):
    """Each membership costs a member-set entry and a reverse-index entry: under 100 bytes.
    Users are numbered first (as the benchmark pre-loads them), so what a user costs once,
    whatever its cohorts, is measured apart."""

    async def import_cohorts(names: list[tuple[str, str]]) -> int:
        before = await used_memory(tasks.client)
        for start in range(0, users, 5000):
            by_task = defaultdict(list)
            for i in range(start, min(users, start + 5000)):
                user = f"user-{i:07d}"
                for cohort in names:
                    by_task[partition_for(user.encode(), TASKS)].append(
                        (*cohort, user, f"ext-{i}", "add", f"s{i}", 0, False))
            for rows in by_task.values():
                await tasks.apply(s.MembershipResolvedBatch(workspace_id=WS, resolved_at=datetime.now(UTC), rows=rows))
        return await used_memory(tasks.client) - before

    first = await import_cohorts([("mixpanel", "warm-up")])
    per = await import_cohorts([("mixpanel", f"c{c}") for c in range(cohorts)]) / (users * cohorts)
    with capsys.disabled():
        print(f"\n{users:,} users x {cohorts} cohorts: {per:.1f} B per membership; a user's first membership, "
              f"with its number and record: {first / users:.1f} B")
    assert per < 100


async def test_a_merge_costs_the_same_per_cohort_however_many_cohorts_a_user_is_in(tasks):
    """Merging a user in k cohorts is k changes; each must cost the same whatever k is, or a
    merge of a heavy user blocks Redis for everyone. Measured by Redis itself (commandstats):
    k = 200 against k = 2,000, linear about 10x, quadratic about 100x."""

    async def merge_cost(k: int, tag: str) -> float:
        merged, kept = f"heavy-{tag}", f"kept-{tag}"
        rows = [("mixpanel", f"{tag}-{c}", merged, None, "add", f"s{c}", 0, False) for c in range(k)]
        await tasks.apply(s.MembershipResolvedBatch(workspace_id=WS, resolved_at=datetime.now(UTC), rows=rows))
        before = await script_usec(tasks.client)
        events = await tasks.apply(*merge(merged, kept, f"merge-{tag}"))
        assert len(events) == 2 * k  # k additions of the kept user, then k removals of the merged one
        return await script_usec(tasks.client) - before

    # The least of a few runs: what the work costs, without what a busy machine adds to it.
    small = min([await merge_cost(200, f"a{run}") for run in range(3)])
    large = min([await merge_cost(2000, f"b{run}") for run in range(2)])
    print(f"merge of 200 cohorts: {small} µs, of 2,000: {large} µs ({large / small:.1f}×)")
    assert large < 35 * small, f"merge of 2,000 cohorts took {large} µs, of 200 cohorts {small} µs"


async def script_usec(client) -> int:
    """Microseconds Redis (every node) spent running scripts so far."""
    return sum(node.get("cmdstat_evalsha", {}).get("usec", 0) for node in await server_info(client, "commandstats"))


def test_unmatched_key_is_the_cohorts():
    assert s.MembershipUnmatchedBatch(workspace_id=WS, partner="mixpanel", cohort_id="c", accepted_at=datetime.now(UTC),
                                      rows=[]).kafka_key() == cohort_key(WS, "mixpanel", "c")


# ---------------------------------------------------------------- key layouts 1 and 2 -> 3


async def dump(client, prefix: str) -> dict[bytes, object]:
    """Every key under `prefix` with its value."""
    found: dict[bytes, object] = {}
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = (await client.type(key)).decode()
        found[key] = (await client.hgetall(key) if kind == "hash" else await client.smembers(key) if kind == "set"
                      else await client.get(key))
    return found


async def back_to_layout_2(tasks: Tasks) -> int:
    """Take why users are gone out of their `un:` fields into layout 2's `gone:` hashes (the
    same buckets): what a task written by a layout-2 version holds. Returns the old keys made."""
    client, made = tasks.client, set()
    for task in range(TASKS):
        layout = tasks.store.layout(task)
        await client.set(layout.version, 2)
        async for key in client.scan_iter(match=layout.numbers_at(WS) + "*", count=1000):
            for user, raw in (await client.hgetall(key)).items():
                n, gone = decode_entry(raw)
                if gone is None:
                    continue
                made.add(target := layout.k(GONE, WS, key.decode().rpartition(":")[2]))
                await client.hset(target, user, gone)
                await (client.hset(key, user, n) if n is not None else client.hdel(key, user))
    return len(made)


async def back_to_layout_1(tasks: Tasks) -> int:
    """Layout 2 (`back_to_layout_2`), with the number-keyed hashes as layout 1 kept them (512
    numbers a bucket, the old names): what a task written by a layout-1 version holds. Returns
    the old keys made."""
    client, made = tasks.client, set()
    await back_to_layout_2(tasks)
    for task in range(TASKS):
        layout = tasks.store.layout(task)
        await client.delete(layout.version)
        for old, where in MOVED.items():
            async for key in client.scan_iter(match=where(layout, WS, 0).removesuffix("0") + "*", count=1000):
                for n, value in (await client.hgetall(key)).items():
                    made.add(target := layout.k(old, WS, int(n) // 512))
                    await client.hset(target, n, value)
                await client.delete(key)
    return len(made)


async def import_many(tasks: Tasks, users: int) -> None:
    """Users in two cohorts, a third of them with a profile (index fields), some deleted or merged
    and a few deleted before any change named them: several old buckets of every kind in every
    task."""
    by_task = defaultdict(list)
    for i in range(users):
        user = f"m{i:05d}"
        for cohort in COHORTS[:2 if i % 2 else 1]:
            by_task[partition_for(user.encode(), TASKS)].append((*cohort, user, f"x{user}", "add", f"s{i}", 0, False))
    for rows in by_task.values():
        await tasks.apply(s.MembershipResolvedBatch(workspace_id=WS, resolved_at=datetime.now(UTC), rows=rows))
    for i in range(0, users, 3):
        user = f"m{i:05d}"
        await tasks.apply(s.ProfileUpdated(workspace_id=WS, user_id=user, external_id=f"x{user}", identified=True,
                                           device_ids=[f"d{user}"], aliases=[{"alias_label": "crm", "alias_name": f"a{user}"}],
                                           updated_at=datetime.now(UTC)))
    for i in range(1, users, 7):
        await tasks.apply(delete(f"m{i:05d}", f"del-{i}"), delete(f"never{i:05d}", f"del-never-{i}"))
    for i in range(2, users - 1, 11):
        await tasks.apply(*merge(f"m{i:05d}", f"m{i + 1:05d}", f"merge-{i}"))


def migrate(tasks: Tasks, task: int, token: str = "tests", **options):
    write = functools.partial(tasks.commit.write, tasks.store.layout(task).task, token)
    return LayoutMigration(tasks.client, tasks.settings.redis_key_prefix, **options)(task, write)


@pytest.mark.parametrize("back_to, old_keys", [(back_to_layout_1, 3 * TASKS * 2), (back_to_layout_2, 100)])
async def test_a_task_written_in_an_older_layout_reads_the_same_once_moved(tasks, back_to, old_keys):
    await import_many(tasks, 3300)
    prefix = tasks.settings.redis_key_prefix
    written = await dump(tasks.client, prefix)
    assert await back_to(tasks) >= old_keys
    assert await dump(tasks.client, prefix) != written
    for task in range(TASKS):
        await migrate(tasks, task)
    markers = {tasks.store.layout(t).version.encode(): str(LAYOUT).encode() for t in range(TASKS)}
    assert await dump(tasks.client, prefix) == written | markers
    for task in range(TASKS):  # once moved, a task is not looked through again
        await migrate(tasks, task, slice_seconds=-1)
    assert await dump(tasks.client, prefix) == written | markers
    events = await tasks.apply(resolved("m00003", COHORTS[0], "remove", "after"))
    assert [as_tuple(e) for e in events] == [(COHORTS[0], "m00003", "removed", "cohort_import")]
    store = Store(tasks.client, prefix, TASKS, buckets_per_call=1)
    found = await store.find_user(WS, UserRef("user_id", "m00003"), with_cohorts=True)
    assert found is not None and found.cohorts == [COHORTS[1]]
    # Gone users stay gone: deleted (m00001, and never00001 before any change), merged (m00002).
    assert await tasks.apply(resolved("m00001", COHORTS[0], "add", "late-1"),
                             resolved("never00001", COHORTS[0], "add", "late-2")) == []
    assert [as_tuple(e) for e in await tasks.apply(resolved("m00002", COHORTS[2], "add", "late-3"))] == [
        (COHORTS[2], "m00003", "added", "cohort_import")]
    for gone in ("m00001", "never00001", "m00002"):
        assert await store.find_user(WS, UserRef("user_id", gone)) is None


async def test_a_migration_cut_short_goes_on_where_it_stopped(tasks):
    await import_many(tasks, 1200)
    prefix = tasks.settings.redis_key_prefix
    written = await dump(tasks.client, prefix)
    await back_to_layout_1(tasks)
    slices = 0
    for task in range(TASKS):
        while True:
            try:
                await migrate(tasks, task, slice_seconds=-1, keys_per_write=1)
                break
            except TaskNotReady:
                slices += 1
    assert slices >= 2 * TASKS
    markers = {tasks.store.layout(t).version.encode(): str(LAYOUT).encode() for t in range(TASKS)}
    assert await dump(tasks.client, prefix) == written | markers


async def test_an_instance_that_lost_the_task_moves_nothing(tasks):
    await import_many(tasks, 600)
    await back_to_layout_1(tasks)
    before = await dump(tasks.client, tasks.settings.redis_key_prefix)
    with pytest.raises(Exception, match="FENCED"):
        await migrate(tasks, 0, token="an instance that lost the task")
    assert await dump(tasks.client, tasks.settings.redis_key_prefix) == before


async def test_a_task_without_state_is_marked_without_a_search(tasks):
    scans = await scan_calls(tasks.client)
    await migrate(tasks, 1)
    assert await tasks.client.get(tasks.store.layout(1).version) == str(LAYOUT).encode()
    assert await scan_calls(tasks.client) == scans


async def test_a_task_in_a_newer_layout_is_left_alone(tasks):
    """After a rollback: this version would misread state a newer one moved, so it refuses."""
    await import_many(tasks, 300)
    await tasks.client.set(tasks.store.layout(2).version, LAYOUT + 1)
    before = await dump(tasks.client, tasks.settings.redis_key_prefix)
    with pytest.raises(NewerLayout, match=f"key layout {LAYOUT + 1}"):
        await migrate(tasks, 2)
    assert await dump(tasks.client, tasks.settings.redis_key_prefix) == before


async def scan_calls(client) -> int:
    return sum(node.get("cmdstat_scan", {}).get("calls", 0) for node in await server_info(client, "commandstats"))
