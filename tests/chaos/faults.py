"""When each fault strikes (planned from the seed before the run) and how it is injected and
undone. Faults of the infrastructure never overlap one another; service kills land anywhere,
on any instance that is running at that moment (never on the frozen one)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass

from .fleet import Fleet
from .infra import Infra
from .profiles import Faults

LABELS = {
    "kill_identity": "SIGKILL identity-resolution",
    "kill_segment": "SIGKILL segment-store",
    "kill_ingest": "SIGKILL ingest",
    "kill_delivery": "SIGKILL delivery",
    "kill_broker": "SIGKILL a Kafka broker, then restart it",
    "kill_redis": "SIGKILL Redis, then restart it (AOF)",
    "redis_read_only": "Redis refuses writes for 10 s, as in a failover (REPLICAOF; in a cluster min-replicas-to-write)",
    "freeze_segment": "SIGSTOP a segment-store instance past its session timeout, then SIGCONT",
    "poison": "poison record on every input topic",
}
MODULES = {"kill_identity": "identity_resolution", "kill_segment": "segment_store", "kill_ingest": "ingest",
           "kill_delivery": "delivery"}


@dataclass(frozen=True, order=True)
class PlannedFault:
    at: float  # seconds after the import started
    kind: str


def plan_faults(faults: Faults, duration: float, rng: random.Random) -> list[PlannedFault]:
    """Each kind's faults spread over 5%..85% of the import, one in each equal slot, at a random
    moment inside it: spread out, yet never at predictable times."""
    start, span = 0.05 * duration, 0.8 * duration
    planned = []
    for kind, count in vars(faults).items():
        for slot in range(count):
            planned.append(PlannedFault(round(start + (slot + rng.random()) * span / count, 2), kind))
    return sorted(planned)


class FaultInjector:
    def __init__(self, fleet: Fleet, infra: Infra, rng: random.Random, freeze_seconds: float, topic_prefix: str,
                 run_id: str, deadline: float) -> None:
        self.fleet, self.infra, self.rng = fleet, infra, rng
        self.freeze_seconds, self.topic_prefix, self.run_id, self.deadline = freeze_seconds, topic_prefix, run_id, deadline
        self.injected: Counter = Counter()
        self.not_injected: Counter = Counter()
        self.poison: dict[str, bytes] = {}
        self.timeline: list[str] = []
        self._infra_lock = asyncio.Lock()
        self._started = time.monotonic()

    async def run(self, plan: list[PlannedFault], started: float) -> None:
        """Inject every planned fault at its moment; return once each has been undone."""
        self._started = started
        pending = []
        for fault in plan:
            await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
            pending.append(asyncio.create_task(self._inject(fault.kind)))
        await asyncio.gather(*pending)

    def _note(self, text: str) -> None:
        line = f"{time.monotonic() - self._started:7.1f}s  {text}"
        self.timeline.append(line)
        print(f"  [fault] {line}", flush=True)

    async def _inject(self, kind: str) -> None:
        try:
            if kind in MODULES:
                ok = await self._kill_service(MODULES[kind])
            else:
                async with self._infra_lock:
                    ok = await getattr(self, f"_{kind}")()
        except Exception as error:  # noqa: BLE001 - a fault that fails is reported, the run goes on
            self._note(f"{kind} failed: {error!r}")
            ok = False
        (self.injected if ok else self.not_injected)[kind] += 1

    async def _kill_service(self, module: str) -> bool:
        for _ in range(40):  # an instance may be restarting or frozen right now: wait for one
            running = [i for i in self.fleet.of(module) if i.state == "running"]
            if running:
                break
            await asyncio.sleep(0.5)
        else:
            self._note(f"no running {module} instance to kill")
            return False
        instance = self.rng.choice(running)
        self.fleet.kill(instance)
        delay = round(self.rng.uniform(0.5, 3.0), 1)
        self._note(f"SIGKILL {instance.name}; restart in {delay} s")
        await asyncio.sleep(delay)
        if instance.state == "killed":  # not stopped for good meanwhile
            self.fleet.start(instance)
        return True

    async def _kill_broker(self) -> bool:
        node = self.rng.randrange(len(self.infra.broker_ports))
        killed = await self.infra.kill_broker(node)
        try:
            if not killed:
                self._note(f"could not kill broker {node} (not started by stack.sh?)")
                return False
            # Three brokers: one down long enough for leaders to move and ISRs to shrink. One
            # broker: down briefly, the whole pipeline waits.
            down = self.rng.uniform(10, 20) if len(self.infra.broker_ports) > 1 else 1.0
            self._note(f"SIGKILL Kafka broker {node}; restart in {down:.0f} s")
            await asyncio.sleep(down)
            return True
        finally:  # whatever happened, the broker runs again before the next fault
            started = await self.infra.start_broker(node)
            self._note(f"Kafka broker {node} {'serving again' if started else 'FAILED to restart'}")

    async def _kill_redis(self) -> bool:
        killed = await self.infra.kill_redis()
        try:
            if not killed:
                self._note("could not kill Redis (not started by stack.sh?)")
                return False
            down = self.rng.uniform(1, 3)
            self._note(f"SIGKILL Redis; restart in {down:.1f} s")
            await asyncio.sleep(down)
            return True
        finally:
            self._note(f"Redis {'running (AOF reloaded)' if await self.infra.start_redis() else 'FAILED to restart'}")

    async def _redis_read_only(self) -> bool:
        if not await self.infra.set_read_only(True):
            return False
        try:
            self._note("Redis refusing writes (read-only) for 10 s")
            await asyncio.sleep(10)
            return True
        finally:
            self._note(f"Redis {'writable again' if await self.infra.set_read_only(False) else 'STILL read-only'}")

    async def _freeze_segment(self) -> bool:
        # Held under the infrastructure lock too, so the zombie's return is not muddled by a
        # broker restart at the same moment.
        for _ in range(40):  # one may be restarting after a kill: wait until both run
            running = [i for i in self.fleet.of("segment_store") if i.state == "running"]
            if len(running) >= 2:
                break
            await asyncio.sleep(0.5)
        else:
            self._note("freeze: fewer than two segment-store instances running")
            return False
        instance = self.rng.choice(running)
        self.fleet.freeze(instance)
        try:
            self._note(f"SIGSTOP {instance.name} for {self.freeze_seconds:.0f} s")
            await asyncio.sleep(self.freeze_seconds)
            return True
        finally:
            self.fleet.thaw(instance)
            self._note(f"SIGCONT {instance.name} (a zombie until it rejoins)")

    async def _poison(self) -> bool:
        self.poison = await self.infra.produce_poison(self.topic_prefix, self.run_id, self.deadline)
        self._note(f"poison record produced to {len(self.poison)} input topics")
        return True
