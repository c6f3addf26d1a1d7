"""segment-store's rules and state alone: its handler, the save and the commit, on a real
Redis, with no Kafka around them, to compare two versions of segment-store's code with less
noise than the pipeline's (`make bench`), where every process shares two cores.

    python bench/segment_store_alone.py [--users 200000] [--batch 2000]

Imports `--users` new users into one cohort in batches of `--batch` rows (as membership.resolved
carries them, decoded already), each batch handled and committed as the engine does it; then
the same changes again (already in state), then their removal. Prints, per phase, the CPU
microseconds per change of this process (the handler, save, packing and commit; the rows are
built outside the timing) and of Redis. Needs REDIS_URL; the keys it wrote are deleted at the
end. To compare two commits, run it with PYTHONPATH set to a clone of each (README,
Performance).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime

from aiokafka import TopicPartition
from cohort_shared import schemas as s
from cohort_shared.publishing import partition_for
from cohort_shared.state.client import connect_state
from cohort_shared.state.commit import Commit
from cohort_shared.state.lua_script import ScriptCalls
from cohort_shared.stream.service import TaskContext
from cohort_shared.testing import forget_keys, unique
from segment_store.adapters.task_store import TaskStore
from segment_store.entrypoints.stream import segment_service
from segment_store.settings import SegmentSettings

TASKS = 6
PHASES = (("new users", "add"), ("the same again", "add"), ("removed", "remove"))


async def redis_cpu(client) -> float:
    info = await client.info("cpu")
    return sum(node.get("used_cpu_user", 0) + node.get("used_cpu_sys", 0)
               for node in (info.values() if "used_cpu_user" not in info else [info]))


async def run(users: int, batch: int) -> None:
    settings = SegmentSettings(redis_key_prefix=unique("bench-ss-") + ":")
    client = connect_state(settings, socket_timeout=30)
    store = TaskStore(client, settings.redis_key_prefix)
    handler = segment_service(settings, store).handlers[0][1]
    commit = Commit(client)
    try:
        await commit.ensure_loaded()
        for task in range(TASKS):
            await commit.claim(store.layout(task).task, "bench")
        by_task: dict[int, list[str]] = defaultdict(list)
        for i in range(users):
            user = f"user-{i:07d}"
            by_task[partition_for(user.encode(), TASKS)].append(user)
        offset = 0
        for phase, change in PHASES:
            batches = [(task, [("mixpanel", "c1", u, f"ext-{u}", change, f"{phase}:{u}", 0, False)
                               for u in chunk])
                       for task, all_of_task in by_task.items()
                       for chunk in (all_of_task[i:i + batch] for i in range(0, len(all_of_task), batch))]
            cpu, redis_before = time.process_time(), await redis_cpu(client)
            for task, rows in batches:
                message = s.MembershipResolvedBatch.model_construct(workspace_id="ws", resolved_at=datetime.now(UTC),
                                                                    rows=rows)
                ctx = TaskContext(task, store.layout(task).task, client, settings, datetime.now(UTC),
                                  {"membership.resolved": TASKS})
                await handler(ctx, [message])
                offset += 1
                calls = ScriptCalls(client)
                commit.queue(calls, ctx.keys, "bench", {TopicPartition("in", task): (offset, offset)}, ctx.writes,
                             ctx.outputs)
                if await calls.run() != [1]:
                    raise RuntimeError("a batch was not committed")
            cpu, redis = time.process_time() - cpu, await redis_cpu(client) - redis_before
            print(f"{phase:>15}: segment-store {cpu / users * 1e6:6.2f} µs per change, "
                  f"Redis {redis / users * 1e6:5.2f} µs per change", flush=True)
    finally:
        await forget_keys(client, settings.redis_key_prefix)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.batch))


if __name__ == "__main__":
    main()
