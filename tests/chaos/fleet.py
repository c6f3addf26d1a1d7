"""The services as processes this harness starts, kills, freezes and restarts, always with the
same INSTANCE_ID and port per instance (static membership and the transactional ID depend on
it), and a small supervisor that restarts an instance that exits on its own, as systemd or
Kubernetes would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PORT_VARIABLES = {"ingest": "INGEST_PORT", "identity_resolution": "IDENTITY_PORT", "segment_store": "SEGMENT_PORT",
                  "delivery": "DELIVERY_PORT"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: SIGKILL it when this harness dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Instance:
    name: str  # e.g. segment_store-1
    module: str
    port: int
    process: subprocess.Popen | None = None
    state: str = "stopped"  # running | killed | frozen | restarting | stopped
    unplanned_exits: int = 0
    started_at: float = 0.0
    quick_exits: int = 0  # exits in a row soon after a start: the restart backs off

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Fleet:
    """ingest x1, identity-resolution x2, segment-store x2, delivery x1 or x2 (the counts are the caller's)."""

    def __init__(self, env: dict[str, str], logs: Path, counts: dict[str, int]) -> None:
        self.env, self.logs = env, logs
        self.instances = [Instance(f"{module}-{n}", module, free_port())
                          for module, count in counts.items() for n in range(1, count + 1)]
        if self.of("segment_store"):  # ingest's Braze export reads cohorts there (a Service would balance)
            self.env = {**env, "INGEST_SEGMENT_STORE_URL": self.urls("segment_store")[0]}

    def of(self, module: str) -> list[Instance]:
        return [i for i in self.instances if i.module == module]

    def urls(self, module: str) -> list[str]:
        return [i.url for i in self.of(module)]

    def start(self, instance: Instance) -> None:
        """Called from the event loop's thread only: PR_SET_PDEATHSIG follows the thread that forks."""
        env = {**self.env, PORT_VARIABLES[instance.module]: str(instance.port), "INSTANCE_ID": instance.name}
        with (self.logs / f"{instance.name}.log").open("ab") as log:
            instance.process = subprocess.Popen([sys.executable, "-m", instance.module], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        instance.state = "running"
        instance.started_at = time.monotonic()

    def kill(self, instance: Instance) -> None:
        instance.state = "killed"
        if instance.process and instance.process.poll() is None:
            instance.process.kill()
            instance.process.wait()

    def freeze(self, instance: Instance) -> None:
        instance.state = "frozen"
        if instance.process and instance.process.poll() is None:
            instance.process.send_signal(signal.SIGSTOP)

    def thaw(self, instance: Instance) -> None:
        if instance.process and instance.process.poll() is None:
            instance.process.send_signal(signal.SIGCONT)
        instance.state = "running"

    async def supervise(self) -> None:
        """Restart any running instance whose process ended although nobody killed it."""
        while True:
            for instance in self.instances:
                if instance.state == "running" and instance.process and instance.process.poll() is not None:
                    instance.unplanned_exits += 1
                    lived = time.monotonic() - instance.started_at
                    instance.quick_exits = instance.quick_exits + 1 if lived < 20 else 0
                    delay = min(8.0, 0.5 * 2 ** instance.quick_exits)
                    self._note(instance, f"exited by itself with code {instance.process.returncode} after {lived:.0f} s;"
                                         f" restarting in {delay:.0f} s")
                    instance.state = "restarting"
                    asyncio.get_running_loop().call_later(delay, self._restart_if_still_down, instance)
            await asyncio.sleep(0.5)

    def _restart_if_still_down(self, instance: Instance) -> None:
        if instance.state == "restarting":
            self.start(instance)

    def _note(self, instance: Instance, text: str) -> None:
        print(f"  [fleet] {instance.name} {text}", flush=True)

    async def wait_ready(self, timeout: float) -> dict[str, tuple[int | None, int | None]]:
        """Until every instance answers /healthz and /readyz 200, or `timeout`; returns the last
        status codes of each, so a caller can report the ones that never got there."""
        deadline = time.monotonic() + timeout
        while True:
            status = {i.name: await asyncio.to_thread(probe, i.url) for i in self.instances}
            if all(s == (200, 200) for s in status.values()) or time.monotonic() > deadline:
                return status
            await asyncio.sleep(1.0)

    def stop_all(self) -> None:
        """SIGCONT what is frozen, SIGTERM everything, SIGKILL what is still there after 15 s."""
        for instance in self.instances:
            if instance.process and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGCONT)
                instance.process.terminate()
            instance.state = "stopped"
        deadline = time.monotonic() + 15
        for instance in self.instances:
            if instance.process is None:
                continue
            try:
                instance.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()


def probe(url: str) -> tuple[int | None, int | None]:
    """(/healthz status, /readyz status); None where nothing answered."""
    codes = []
    for path in ("/healthz", "/readyz"):
        try:
            with urllib.request.urlopen(url + path, timeout=3) as answer:
                codes.append(answer.status)
        except urllib.error.HTTPError as error:
            codes.append(error.code)
        except OSError:
            codes.append(None)
    return codes[0], codes[1]


def unready_details(fleet: Fleet, status: dict[str, tuple[int | None, int | None]]) -> list[str]:
    """For each instance not healthy and ready: its codes, its /readyz body, whether it runs."""
    details = []
    for instance in fleet.instances:
        if status.get(instance.name) == (200, 200):
            continue
        try:
            with urllib.request.urlopen(instance.url + "/readyz", timeout=3) as answer:
                body = answer.read(300).decode(errors="replace")
        except urllib.error.HTTPError as error:
            body = error.read(300).decode(errors="replace")
        except OSError as error:
            body = repr(error)
        alive = instance.process is not None and instance.process.poll() is None
        details.append(f"{instance.name} (healthz, readyz) = {status.get(instance.name)}, process "
                       f"{'running' if alive else 'exited'}, readyz: {body}")
    return details


def stack_command(*args: str) -> list[str]:
    """`deploy/local/stack.sh` of this checkout with `args`."""
    root = Path(__file__).resolve().parents[2]
    return ["bash", str(root / "deploy" / "local" / "stack.sh"), *args]


def stack_env(kafka_port: int, redis_port: int) -> dict[str, str]:
    """stack.sh's fault commands must act on the Kafka and Redis this run uses."""
    return {**os.environ, "KAFKA_PORT": str(kafka_port), "REDIS_PORT": str(redis_port)}
