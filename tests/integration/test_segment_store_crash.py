"""Exactly once under SIGKILL (docs/events.md): segment-store runs as a real process, is killed at
random moments while a stream of membership changes flows, and is restarted with the same
INSTANCE_ID. A second phase merges and deletes profiles, again under SIGKILL. What
`membership.changes` holds (read_committed) must equal what the input means, computed here
independently: nothing lost, nothing twice, per-user order kept, final member sets equal."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cohort_shared import schemas as s
from cohort_shared.kafka import make_producer
from cohort_shared.publishing import partition_for
from cohort_shared.state.keys import TaskKeys
from cohort_shared.testing import ServiceProcesses, eventually, read_topic, unique
from cohort_shared.topics import (
    COHORT_META,
    IDENTITY_MERGES,
    IDENTITY_PROFILES,
    MEMBERSHIP_RESOLVED,
    MEMBERSHIP_UNMATCHED,
    SEGMENT_HANDOVERS,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WS, PARTNER = "crash", "mixpanel"
USERS, COHORTS, CHANGES = 1500, 8, 24_000
KILLS, LATER_KILLS = 8, 3
MERGES, DELETES = 300, 200
# The formula of docs/events.md's stable event_id as segment-store documents it (domain/events.py).
EVENT_NAMESPACE = uuid.UUID("6f1c3c5e-2f43-4b8e-9a57-5b8f0c6d1e21")


ROWS_PER_RECORD = 20
# segment-store's inputs, every one tracked in Redis.
STATEFUL_INPUTS = (MEMBERSHIP_RESOLVED, MEMBERSHIP_UNMATCHED, COHORT_META, IDENTITY_MERGES, IDENTITY_PROFILES,
                   SEGMENT_HANDOVERS)


@dataclass(frozen=True)
class Resolved:
    cohort_id: str
    user_id: str
    change: str
    source_id: str


def workload(rng: random.Random) -> list[Resolved]:
    return [Resolved(f"c{rng.randrange(COHORTS)}", f"U{rng.randrange(USERS):05d}", rng.choice(("add", "add", "remove")),
                     f"req-{i}") for i in range(CHANGES)]


def as_batches(changes: list[Resolved], partitions: int) -> list[tuple[int, s.MembershipResolvedBatch]]:
    """The changes as identity-resolution sends them: batches of rows, each on its users' partition."""
    by_partition: dict[int, list] = defaultdict(list)
    for c in changes:
        by_partition[partition_for(c.user_id.encode(), partitions)].append(
            (PARTNER, c.cohort_id, c.user_id, f"x{c.user_id}", c.change, c.source_id, 0, False))
    return [(p, s.MembershipResolvedBatch(workspace_id=WS, resolved_at=s.utc_now(), rows=rows[i:i + ROWS_PER_RECORD]))
            for p, rows in by_partition.items() for i in range(0, len(rows), ROWS_PER_RECORD)]


def expected_events(changes: list[Resolved]) -> tuple[dict, dict]:
    """Per user, the effective changes in order; and the final member set of each cohort."""
    members: dict[str, set[str]] = defaultdict(set)
    per_user: dict[str, list[tuple]] = defaultdict(list)
    for c in changes:
        present = c.user_id in members[c.cohort_id]
        if c.change == "add" and not present:
            members[c.cohort_id].add(c.user_id)
        elif c.change == "remove" and present:
            members[c.cohort_id].discard(c.user_id)
        else:
            continue
        past = "added" if c.change == "add" else "removed"
        per_user[c.user_id].append(event(c.cohort_id, c.user_id, past, "cohort_import", c.source_id))
    return per_user, members


def event(cohort: str, user: str, change: str, cause: str, source: str) -> tuple[str, str, str]:
    name = "\x1f".join((WS, PARTNER, cohort, user, change, cause, source))
    return cohort, change, str(uuid.uuid5(EVENT_NAMESPACE, name))


def identity_changes(rng: random.Random) -> list[s.Message]:
    """Profiles merged pairwise and deleted, all distinct users: their order does not matter."""
    users = rng.sample([f"U{i:05d}" for i in range(USERS)], 2 * MERGES + DELETES)
    now = s.utc_now()
    merges = [s.ProfilesMerged(workspace_id=WS, merged_user_id=m, merged_external_id=f"x{m}", kept_user_id=k,
                               kept_external_id=f"x{k}", source_id=f"merge-{m}", merged_at=now)
              for m, k in zip(users[:MERGES], users[MERGES:2 * MERGES], strict=True)]
    deletes = [s.ProfileDeleted(workspace_id=WS, user_id=d, external_id=f"x{d}", source_id=f"delete-{d}",
                                deleted_at=now) for d in users[2 * MERGES:]]
    return merges + deletes


def expect_identity_changes(messages: list[s.Message], members: dict[str, set[str]], per_user: dict) -> None:
    """docs/events.md: a merge adds the kept profile where it is new, then removes the merged one; a
    deletion removes every membership. Cohorts in the order they were created (c0, c1, …)."""
    cohorts = [f"c{i}" for i in range(COHORTS)]
    for m in messages:
        if isinstance(m, s.ProfilesMerged):
            moving = [c for c in cohorts if m.merged_user_id in members[c]]
            for c in moving:
                if m.kept_user_id not in members[c]:
                    members[c].add(m.kept_user_id)
                    per_user[m.kept_user_id].append(event(c, m.kept_user_id, "added", "merge", m.source_id))
            for c in moving:
                members[c].discard(m.merged_user_id)
                per_user[m.merged_user_id].append(event(c, m.merged_user_id, "removed", "merge", m.source_id))
        else:
            for c in cohorts:
                if m.user_id in members[c]:
                    members[c].discard(m.user_id)
                    per_user[m.user_id].append(event(c, m.user_id, "removed", "delete", m.source_id))


async def feed(settings_env: dict, topic: str, messages: list, seconds: float) -> None:
    """Publish messages (or (partition, message) pairs) in chunks spread over `seconds`."""
    from cohort_shared.settings import CommonSettings

    producer = make_producer(CommonSettings(**settings_env))
    await producer.start()
    try:
        chunk = 20
        for start in range(0, len(messages), chunk):
            for item in messages[start:start + chunk]:
                partition, message = item if isinstance(item, tuple) else (None, item)
                await producer.send(topic, message.to_bytes(), key=message.kafka_key(), partition=partition)
            await producer.flush()
            await asyncio.sleep(seconds * chunk / len(messages))
    finally:
        await producer.stop()


async def in_doubt(stack_env: dict, redis_client) -> int:
    """Records applied in Redis (tracked) but whose offsets Kafka has not committed: what the
    next incarnation must republish from the outbox, not apply again. Counted after a SIGKILL."""
    prefix, group = stack_env["TOPIC_PREFIX"], f"{stack_env['TOPIC_PREFIX']}segment-store"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        committed = {(tp.topic, tp.partition): meta.offset
                     for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()
    doubt = 0
    for partition in range(int(stack_env["TOPIC_PARTITIONS"])):
        tracking = TaskKeys(stack_env["REDIS_KEY_PREFIX"], "segment-store", partition).tracking
        for topic in (f"{prefix}{base}" for base in STATEFUL_INPUTS):
            done = await redis_client.hget(tracking, topic)
            if done is not None:
                doubt += max(0, int(done) + 1 - committed.get((topic, partition), 0))
    return doubt


async def _exited(services: ServiceProcesses) -> bool:
    return services.processes["segment_store"].poll() is not None


async def count_all_records(bootstrap: str, topic: str, partitions: int) -> int:
    """Records in `topic` including those of aborted transactions (read_uncommitted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_uncommitted")
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        count, deadline = 0, time.monotonic() + 30
        while time.monotonic() < deadline and any([await consumer.position(tp) < ends[tp] for tp in assigned]):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                count += len(batch)
        return count
    finally:
        await consumer.stop()


async def all_members(url: str, headers: dict, cohort: str) -> list[str]:
    found, cursor = [], None
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = (await http.get(f"/workspaces/{WS}/cohorts/{cohort}/members", params=params)).json()
            found += [m["user_id"] for m in page["members"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return found


async def name_cohorts_in_order(stack_env: dict, url: str, headers: dict) -> None:
    """Name c0, c1, … one after another, so the store creates them in that order."""
    from cohort_shared.settings import CommonSettings

    producer = make_producer(CommonSettings(**stack_env))
    await producer.start()
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            for i in range(COHORTS):
                named = s.CohortNamed(workspace_id=WS, partner=PARTNER, cohort_id=f"c{i}", name=f"Cohort {i}",
                                      named_at=s.utc_now())
                await producer.send_and_wait(f"{stack_env['TOPIC_PREFIX']}cohort.meta", named.to_bytes(),
                                             key=named.kafka_key())
                await eventually(lambda: http.get(f"/workspaces/{WS}/cohorts"),
                                 until=lambda r, n=i + 1: len(r.json()["cohorts"]) == n, timeout=30)
    finally:
        await producer.stop()


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(stack_env, kafka_topics, redis_client, tmp_path):
    seed = int(os.environ.get("CRASH_SEED", time.time()))
    rng = random.Random(seed)
    print(f"crash test seed {seed}")
    changes = workload(rng)
    per_user, members = expected_events(changes)
    imported = sum(len(events) for events in per_user.values())
    identity = identity_changes(rng)
    expect_identity_changes(identity, members, per_user)
    late = [Resolved(f"c{i % COHORTS}", f"late-{i:04d}", "add", f"late-{i}") for i in range(600)]
    for change in late:
        per_user[change.user_id].append(event(change.cohort_id, change.user_id, "added", "cohort_import",
                                              change.source_id))
        members[change.cohort_id].add(change.user_id)
    total = sum(len(events) for events in per_user.values())

    services = ServiceProcesses.configure({**stack_env, "LOG_LEVEL": "WARNING", "SEGMENT_BATCH_MAX_RECORDS": "100"},
                                          tmp_path)
    instance = {"INSTANCE_ID": unique("crash-")}
    url, prefix = services.urls["segment_store"], stack_env["TOPIC_PREFIX"]
    services.start("segment_store", **instance)
    services.wait_ready("segment_store")
    doubted: list[int] = []

    async def kill_and_restart() -> None:
        services.stop("segment_store", kill=True)  # SIGKILL
        doubted.append(await in_doubt(stack_env, redis_client))
        services.start("segment_store", **instance)
        await asyncio.to_thread(services.wait_ready, "segment_store")

    try:
        await name_cohorts_in_order(stack_env, url, services.admin)
        # The changes arrive in bursts, each a backlog the service is still applying and
        # committing when the SIGKILL comes a random moment later: at least KILLS kills, and
        # more while none has yet landed between a batch's Redis apply and its Kafka commit.
        parts = 3 * KILLS
        batches = as_batches(changes, int(stack_env["TOPIC_PARTITIONS"]))
        bursts = [batches[len(batches) * i // parts:len(batches) * (i + 1) // parts] for i in range(parts)]
        for burst in bursts:
            await feed(stack_env, f"{prefix}membership.resolved", burst, seconds=0)
            if len(doubted) < KILLS or sum(doubted) == 0:
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                await kill_and_restart()
        async with httpx.AsyncClient(base_url=url, headers=services.admin) as http:
            await eventually(lambda: http.get(f"/workspaces/{WS}/usage"),
                             until=lambda r: r.json() == {"data_points": imported}, timeout=60)
        # Then merges and deletions, each a burst of events from one record, sent while the
        # service is down so that it restarts into a backlog, and killed again while on it.
        # Killed without waiting for readiness: start-up itself is one of the random moments.
        services.stop("segment_store", kill=True)
        await feed(stack_env, f"{prefix}identity.merges", identity, seconds=0)
        for _ in range(LATER_KILLS):
            services.start("segment_store", **instance)
            await asyncio.sleep(rng.uniform(0.5, 1.3))
            services.stop("segment_store", kill=True)
            doubted.append(await in_doubt(stack_env, redis_client))
        # And once, for certain, a death between a batch's Redis commit and its Kafka commit:
        # random kills land there only now and then. The next incarnation must republish it.
        services.start("segment_store", **instance, STREAM_FAILPOINT="exit-after-redis-commit")
        await feed(stack_env, f"{prefix}membership.resolved", as_batches(late, int(stack_env["TOPIC_PARTITIONS"])),
                   seconds=0)
        await eventually(lambda: _exited(services), timeout=60)
        doubted.append(await in_doubt(stack_env, redis_client))
        services.start("segment_store", **instance)
        await asyncio.to_thread(services.wait_ready, "segment_store")

        records = await read_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"{prefix}membership.changes",
                                   expected=total, timeout=90, settle=3.0)
        events = [orjson.loads(r.value) for r in records]
        assert len({e["event_id"] for e in events}) == len(events), "an event was published twice"
        assert len(events) == total, f"{len(events)} events, {total} expected"
        assert [r.key.decode() for r in records] == [e["user_id"] for e in events], "events are keyed by user"
        got: dict[str, list[tuple]] = defaultdict(list)
        for e in events:  # read partition by partition; a user's events all sit in one, in order
            got[e["user_id"]].append((e["cohort_id"], e["change"], e["event_id"]))
            assert (e["workspace_id"], e["partner"], e["external_id"]) == (WS, PARTNER, f"x{e['user_id']}")
        differ = {u for u in set(per_user) | set(got) if got.get(u, []) != per_user.get(u, [])}
        assert not differ, f"per-user sequences differ for {len(differ)} users: " + "; ".join(
            f"{u} expected {per_user.get(u, [])} got {got.get(u, [])}" for u in sorted(differ)[:3])

        for cohort in sorted(members):
            listed = await all_members(url, services.admin, cohort)
            assert len(listed) == len(set(listed)) and set(listed) == members[cohort], cohort
        async with httpx.AsyncClient(base_url=url, headers=services.admin) as http:
            usage = (await http.get(f"/workspaces/{WS}/usage")).json()
            reports = [(await http.get(f"/workspaces/{WS}/cohorts/c{i}")).json() for i in range(COHORTS)]
        assert usage == {"data_points": imported + len(late)}, "merges and deletions are free"
        assert sum(r["sync_report"]["applied"] + r["sync_report"]["already_in_state"] for r in reports) \
            == CHANGES + len(late)
        assert [r["member_count"] for r in reports] == [len(members[f"c{i}"]) for i in range(COHORTS)]

        aborted = await count_all_records(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"{prefix}membership.changes",
                                          int(stack_env["TOPIC_PARTITIONS"])) - len(events)
        print(f"{total} events; records in doubt at each kill {doubted}; events of aborted transactions {aborted}")
        assert doubted[-1] > 0, "the failpoint's death left nothing between a Redis and a Kafka commit"
    except BaseException:
        print(services.tail("segment_store", 80))
        raise
    finally:
        services.stop_all()
