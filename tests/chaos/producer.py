"""The continuous import and the interleaved merges and deletes, paced over the import's
planned length. A request waits for the 202 of every earlier request that touches one of its
(identifier, cohort) pairs, so each pair's changes are accepted in plan order, the order the
oracle applies them in."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .api import SystemApi
from .retrying import DeadlineReached, Outcome
from .workload import ImportRequest, ProfileOp


@dataclass
class Sent:
    """What happened to each request: its attempts, and whether it was finally accepted."""

    imports: dict[int, Outcome] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # 4xx answers to requests the contract accepts
    unanswered: list[str] = field(default_factory=list)  # no 2xx before the deadline
    profile_ops: list[tuple[ProfileOp, Outcome]] = field(default_factory=list)
    seconds: float = 0.0

    def accepted(self, index: int) -> bool:
        outcome = self.imports.get(index)
        return outcome is not None and outcome.attempts[-1:] == ["accepted"]


async def run_import(api: SystemApi, requests: list[ImportRequest], sent: Sent, seconds: float,
                     concurrency: int) -> None:
    started = time.monotonic()
    done = {r.index: asyncio.Event() for r in requests}
    last_touch: dict = {}
    waits_for: dict[int, set[int]] = {}
    for request in requests:
        waits_for[request.index] = {last_touch[p] for p in request.pairs() if p in last_touch}
        for pair in request.pairs():
            last_touch[pair] = request.index
    slots = asyncio.Semaphore(concurrency)
    interval = seconds / max(1, len(requests))

    async def send(request: ImportRequest) -> None:
        await asyncio.sleep(max(0.0, started + request.index * interval - time.monotonic()))
        for earlier in waits_for[request.index]:
            await done[earlier].wait()
            if not sent.accepted(earlier):
                return  # never acknowledged: the order of this pair is unknown from here on
        async with slots:
            try:
                outcome = await api.send_changes(request)
            except DeadlineReached as late:
                sent.imports[request.index] = late.outcome
                sent.unanswered.append(f"import request {request.index}")
                return
            finally:
                done[request.index].set()
        sent.imports[request.index] = outcome
        if outcome.attempts[-1] != "accepted":
            sent.refused.append(f"import request {request.index}: {outcome.response.status_code} "
                                f"{outcome.response.text[:200]}")

    await asyncio.gather(*(send(r) for r in requests))
    sent.seconds = time.monotonic() - started


async def run_profile_ops(api: SystemApi, ops: list[ProfileOp], sent: Sent, seconds: float) -> None:
    """One merge or delete per request, each sent after the previous one's 202 (identity.events
    keeps a workspace's requests in order, so the oracle can apply them in this order)."""
    started = time.monotonic()
    interval = seconds / max(1, len(ops))
    for position, op in enumerate(ops):
        await asyncio.sleep(max(0.0, started + position * interval - time.monotonic()))
        try:
            outcome = await api.send_profile_ops(op.action, [op])
        except DeadlineReached as late:
            sent.unanswered.append(f"{op.action} {op.ident.ref}")
            sent.profile_ops.append((op, late.outcome))
            return  # later ops would no longer be in a known order
        sent.profile_ops.append((op, outcome))
        if outcome.attempts[-1] != "accepted":
            sent.refused.append(f"{op.action} {op.ident.ref}: {outcome.response.status_code}")
