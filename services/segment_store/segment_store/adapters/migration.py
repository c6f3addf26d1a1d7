"""Moving a task's state into the current key layout (layout.py) when an instance takes the task.

Layout 1 kept the hashes keyed by user number in buckets of 512 numbers, under `rec:`, `rev:`
and `ids:`; layout 2 keeps them in buckets of `HASH_WIDTH` under `rc:`, `uc:` and `uf:`
(everything else is unchanged). Each old bucket moves in one fenced write — its fields into
the new buckets, the old key deleted — so a migration cut short (a crash, a lost task, Redis
away) goes on where it stopped, and an instance that lost the task moves nothing more. The
last write records the layout; a task that never committed a batch has nothing to move.

A large task moves in slices of `SLICE_SECONDS`: between slices the task's records wait
(`TaskNotReady`), nothing else does. The engine takes an instance's new tasks one after the
other within one time bound (120 s), so a slice is short enough for two dozen tasks. Every instance of the
previous version must be stopped first (README, Upgrading): one would write layout 1 again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cohort_shared.state.client import keys_starting_with
from cohort_shared.state.writes import WriteSet
from cohort_shared.stream.service import FencedWrite, TaskNotReady

from .layout import LAYOUT, Layout

log = logging.getLogger(__name__)

MOVED: dict[str, Callable[[Layout, str, int], str]] = {
    "rec": Layout.records, "rev": Layout.reverse, "ids": Layout.index_fields,
}
"""Layout 1's hashes keyed by user number: their names then, and where a number's field lives now."""
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
            await self._move(layout, write)
        done = WriteSet()
        done.set(layout.version, LAYOUT)
        await write(done)

    async def _move(self, layout: Layout, write: FencedWrite) -> None:
        old: list[tuple[str, str, str]] = []  # (old name, its keys' start, key)
        for name in MOVED:
            head = layout.k(name, "")
            old += [(name, head, key.decode()) async for key in keys_starting_with(self.client, head)]
        if not old:
            return
        deadline = time.monotonic() + self.slice_seconds
        log.info("task %d: moving %d buckets of its state to key layout %s", layout.partition, len(old), LAYOUT)
        for start in range(0, len(old), self.keys_per_write):
            chunk = old[start:start + self.keys_per_write]
            pipe = self.client.pipeline(transaction=False)
            for _, _, key in chunk:
                pipe.hgetall(key)
            writes = WriteSet()
            for (name, head, key), fields in zip(chunk, await pipe.execute(), strict=True):
                ws = key[len(head):].rpartition(":")[0]  # <name>:<ws>:<bucket>
                for n, value in sorted((int(n), value) for n, value in fields.items()):
                    writes.hset(MOVED[name](layout, ws, n), {n: value})
                writes.delete(key)
            await write(writes)
            moved = start + len(chunk)
            if moved < len(old) and time.monotonic() > deadline:
                raise TaskNotReady(f"task {layout.partition}: moving its state to key layout {LAYOUT}, "
                                   f"{moved} of {len(old)} buckets moved")
        log.info("task %d: its state is in key layout %s", layout.partition, LAYOUT)
