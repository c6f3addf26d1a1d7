"""Moving a task's state into the current key layout (layout.py) when an instance takes the task.

Layout 1 kept the hashes keyed by user number in buckets of 512 numbers, under `rec:`, `rev:`
and `ids:`; layout 2 keeps them in buckets of `HASH_WIDTH` under `rc:`, `uc:` and `uf:`.
Layout 2 kept why a user is gone in a hash of its own, `gone:<ws>:<hhh>`, bucketed like the
numbers; layout 3 keeps it in the user's `un:` field beside its number, so a batch reads both
in one command (everything else is unchanged). Each old bucket moves in one fenced write —
its fields into their new place, the old key deleted — so a migration cut short (a crash, a
lost task, Redis away) goes on where it stopped, and an instance that lost the task moves
nothing more. The end of each step records its layout; a task that never committed a batch
has nothing to move.

A large task moves in slices of `SLICE_SECONDS`: between slices the task's records wait
(`TaskNotReady`), nothing else does. The engine takes an instance's new tasks one after the
other within one time bound (120 s), so a slice is short enough for two dozen tasks. Every instance of a
previous version must be stopped first (README, Upgrading): one would write an older layout again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from cohort_shared.state.client import keys_starting_with
from cohort_shared.state.writes import WriteSet
from cohort_shared.stream.service import FencedWrite, TaskNotReady

from .layout import LAYOUT, Layout, encode_entry

log = logging.getLogger(__name__)

MOVED: dict[str, Callable[[Layout, str, int], str]] = {
    "rec": Layout.records, "rev": Layout.reverse, "ids": Layout.index_fields,
}
"""Layout 1's hashes keyed by user number: their names then, and where a number's field lives now."""
GONE = "gone"
"""Layout 2's hashes of why users are gone, keyed by user ID in the buckets of `un:`."""
KEYS_PER_WRITE = 16
SLICE_SECONDS = 5.0


class NewerLayout(Exception):
    """A task's state is in a layout newer than this version's (a rollback after a migration):
    this version would misread it, so it touches nothing of the task."""


class LayoutMigration:
    """`StreamService.setup` of segment-store."""

    def __init__(self, client, prefix: str, slice_seconds: float = SLICE_SECONDS,
                 keys_per_write: int = KEYS_PER_WRITE) -> None:
        self.client = client
        self.prefix = prefix
        self.slice_seconds = slice_seconds
        self.keys_per_write = keys_per_write

    async def __call__(self, partition: int, write: FencedWrite) -> None:
        layout = Layout(self.prefix, partition)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(layout.version)
        pipe.exists(layout.task.tracking)
        raw, committed = await pipe.execute()
        version = 1 if raw is None else int(raw)
        if version > LAYOUT:
            raise NewerLayout(f"task {partition}'s state is in key layout {version}, this version knows "
                              f"{LAYOUT}: run a version that knows it")
        if version == LAYOUT:
            return
        if committed:
            deadline = time.monotonic() + self.slice_seconds
            steps = ((2, tuple(MOVED), self._renumber_buckets), (3, (GONE,), self._merge_gone))
            for target, names, step in steps[version - 1:]:
                await self._in_slices(layout, target, names, step, write, deadline)
                if target < LAYOUT:  # this step done: a migration cut short later does not look again
                    await write(_marked(layout, target))
        await write(_marked(layout, LAYOUT))

    async def _in_slices(self, layout: Layout, target: int, names, step, write: FencedWrite,
                         deadline: float) -> None:
        """`step` over every key of the old `names`, `keys_per_write` keys a fenced write, until
        `deadline`: then the task waits (`TaskNotReady`) and the next try goes on."""
        old: list[tuple[str, str, str]] = []  # (old name, its keys' start, key)
        for name in names:
            head = layout.k(name, "")
            old += [(name, head, key.decode()) async for key in keys_starting_with(self.client, head)]
        if not old:
            return
        log.info("task %d: moving %d buckets of its state to key layout %s", layout.partition, len(old), target)
        for start in range(0, len(old), self.keys_per_write):
            chunk = old[start:start + self.keys_per_write]
            await write(await step(layout, chunk))
            moved = start + len(chunk)
            if moved < len(old) and time.monotonic() > deadline:
                raise TaskNotReady(f"task {layout.partition}: moving its state to key layout {target}, "
                                   f"{moved} of {len(old)} buckets moved")
        log.info("task %d: its state is in key layout %s", layout.partition, target)

    async def _renumber_buckets(self, layout: Layout, chunk: list[tuple[str, str, str]]) -> WriteSet:
        """Layout 1 → 2: each number's field into its bucket of `HASH_WIDTH`, under the new name."""
        writes = WriteSet()
        for (name, head, key), fields in zip(chunk, await self._hgetall(key for _, _, key in chunk), strict=True):
            ws = key[len(head):].rpartition(":")[0]  # <name>:<ws>:<bucket>
            for n, value in sorted((int(n), value) for n, value in fields.items()):
                writes.hset(MOVED[name](layout, ws, n), {n: value})
            writes.delete(key)
        return writes

    async def _merge_gone(self, layout: Layout, chunk: list[tuple[str, str, str]]) -> WriteSet:
        """Layout 2 → 3: why each user is gone into its `un:` field, beside its number (if any)."""
        writes = WriteSet()
        gone_of = await self._hgetall(key for _, _, key in chunk)
        pipe = self.client.pipeline(transaction=False)
        targets = []
        for (_, head, key), gone in zip(chunk, gone_of, strict=True):
            ws, _, spread = key[len(head):].rpartition(":")  # gone:<ws>:<hhh>, the bucket of un:<ws>:<hhh>
            users = sorted(gone)
            targets.append((layout.numbers_at(ws) + spread, users))
            pipe.hmget(targets[-1][0], users)
        numbers = await pipe.execute() if targets else []
        for (_, _, key), gone, (target, users), ns in zip(chunk, gone_of, targets, numbers, strict=True):
            for user, n in zip(users, ns, strict=True):
                writes.hset(target, {user: encode_entry(None if n is None else int(n), gone[user].decode())})
            writes.delete(key)
        return writes

    def _hgetall(self, keys) -> Awaitable[list]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return pipe.execute()


def _marked(layout: Layout, version: int) -> WriteSet:
    done = WriteSet()
    done.set(layout.version, version)
    return done
