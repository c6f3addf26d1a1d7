"""`make bench`: the pipeline's throughput, latency and cost, side by side with raw Kafka.

    python bench/run.py [--quick | --members N | --ten-million] [--concurrency C] [--no-scaling]

Runs against the broker and Redis named by KAFKA_BOOTSTRAP_SERVERS / REDIS_URL (make bench
starts them), with fresh topics and keys, and starts the three services as processes. Prints
a table and writes bench/results/latest.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import one_hop  # noqa: E402
from cohort_shared.settings import CommonSettings  # noqa: E402
from cohort_shared.state.client import connect_state, is_cluster, used_memory  # noqa: E402
from cohort_shared.testing import ServiceProcesses, forget_keys, forget_topics, unique  # noqa: E402
from ingest.entrypoints.export_stream import GROUP as EXPORT_GROUP  # noqa: E402
from pipeline import (  # noqa: E402
    ChangeCounter,
    Driver,
    measure_durability,
    measure_import,
    measure_latency,
    redis_background,
    wait_for_redis_background,
    wait_until_caught_up,
)
from recovery import measure_recovery  # noqa: E402
from report import render, write_results  # noqa: E402
from webhooks import measure_delivery  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, help="cohort size (default 1,000,000; --quick: 20,000)")
    parser.add_argument("--quick", action="store_true", help="a 20,000-member smoke run, as CI does")
    parser.add_argument("--ten-million", action="store_true", help="a 10,000,000-member cohort")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel producer requests")
    parser.add_argument("--latency-rate", type=int, default=1000, help="changes/s for the latency run")
    parser.add_argument("--latency-seconds", type=int, help="length of the latency run (default 20; --quick: 5)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the two-instance run")
    parser.add_argument("--durability-members", type=int,
                        help="cohort size of the appendfsync everysec/always comparison (default: members, at most "
                             "200,000; 0 skips it)")
    parser.add_argument("--delivery-events", type=int,
                        help="events of the webhook delivery run (default 50,000; --quick: 5,000; 0 skips it)")
    parser.add_argument("--recovery-webhooks", type=int,
                        help="webhooks' state for delivery's start-up against a faust table's recovery (default "
                             "100,000; --quick: 2,000; 0 skips it)")
    parser.add_argument("--delivery-only", action="store_true", help="run only the baseline and the delivery part")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="where latest.{md,json,png} go")
    args = parser.parse_args()
    if args.ten_million:
        args.members = 10_000_000
    args.members = args.members or (20_000 if args.quick else 1_000_000)
    args.latency_seconds = args.latency_seconds or (5 if args.quick else 20)
    if args.delivery_events is None:
        args.delivery_events = 5_000 if args.quick else 50_000
    if args.recovery_webhooks is None:
        args.recovery_webhooks = 2_000 if args.quick else 100_000
    if args.durability_members is None:
        args.durability_members = min(args.members, 200_000)
    return args


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[-1].split("/")[0])


def infrastructure() -> dict[str, psutil.Process]:
    """The Redis servers and Kafka brokers this run uses, when they run on this machine: the
    processes listening on the ports of REDIS_URL and KAFKA_BOOTSTRAP_SERVERS (another
    stack on the same machine is not counted)."""
    redis_ports = {_port(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))}
    redis_ports |= {int(p) for p in os.environ.get("REDIS_CLUSTER_PORTS", "").split(",") if p}
    kafka_ports = {_port(a) for a in os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")}
    found: dict[str, psutil.Process] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        port = conn.laddr.port
        if port in redis_ports:
            name = "redis-server" if len(redis_ports) == 1 else f"redis-server :{port}"
        elif port in kafka_ports:
            name = "kafka broker" if len(kafka_ports) == 1 else f"kafka broker :{port}"
        else:
            continue
        found.setdefault(name, psutil.Process(conn.pid))
    return found


def phase(text: str) -> None:
    """A step of the run, with the UTC time it began (to line up with the services' and
    Redis's logs)."""
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} {text}", flush=True)


class CostMeter:
    """CPU seconds and peak RSS per service process over a phase."""

    def __init__(self, services: ServiceProcesses) -> None:
        self.procs = {name: psutil.Process(p.pid) for name, p in services.processes.items()}
        self.procs.update(infrastructure())
        self.cpu0 = {name: self._cpu(p) for name, p in self.procs.items()}
        self.peak = {name: 0 for name in self.procs}
        self._task = asyncio.create_task(self._sample())

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    async def _sample(self) -> None:
        while True:
            for name, proc in self.procs.items():
                self.peak[name] = max(self.peak[name], proc.memory_info().rss)
            await asyncio.sleep(0.25)

    def finish(self, changes: int) -> dict:
        self._task.cancel()
        return {
            name: {"cpu_seconds_per_million": round((self._cpu(p) - self.cpu0[name]) * 1e6 / changes, 1),
                   "peak_rss_mib": round(self.peak[name] / 2**20, 1)}
            for name, p in self.procs.items()
        }


async def main() -> None:
    args = parse_args()
    run_id = unique("b")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "TOPIC_PREFIX": f"{run_id}.", "REDIS_KEY_PREFIX": f"{run_id}:", "TOPIC_PARTITIONS": "12",
        "LOG_LEVEL": "WARNING", "INGEST_RATE_LIMIT_PER_HOUR": "100000000",
    }
    settings = CommonSettings(**env)
    n = args.members
    results: dict = {"machine": machine(), "members": n, "concurrency": args.concurrency,
                     "kafka_brokers": len(env["KAFKA_BOOTSTRAP_SERVERS"].split(","))}
    print(f"benchmark {run_id}: {n:,} members, {args.concurrency} concurrent producers", flush=True)

    phase("1/8 baseline: one Kafka hop in Python …")
    results["baseline"] = await one_hop(settings, settings.topics.name("bench.baseline"), n)

    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    services = ServiceProcesses.configure(env, logs)
    services.start_all()
    redis = connect_state(settings, socket_timeout=30)
    driver = Driver(services, args.concurrency)
    counter = ChangeCounter(env["KAFKA_BOOTSTRAP_SERVERS"], settings.topics.membership_changes)
    results["redis_mode"] = f"a cluster of {len(redis.get_primaries())} masters" if is_cluster(redis) else "single server"
    try:
        if not args.delivery_only:
            await measure_pipeline(args, results, settings, services, redis, driver, counter, run_id)
        if args.delivery_events:
            phase(f"7/8 delivery: {args.delivery_events:,} webhook events, then {args.latency_rate:,} events/s …")
            results["delivery"] = await measure_delivery(services, settings, args.delivery_events, args.latency_rate,
                                                         args.latency_seconds)
    finally:
        await counter.stop()
        await driver.close()
        services.stop_all()
        print(f"forgot the run's {await forget_keys(redis, f'{run_id}:'):,} Redis keys and "
              f"{await forget_topics(settings.kafka_bootstrap_servers, f'{run_id}.')} topics", flush=True)
        await redis.aclose()
    if args.recovery_webhooks:
        phase(f"8/8 start-up with {args.recovery_webhooks:,} webhooks' state: delivery (Redis) and a faust table …")
        results["recovery"] = await measure_recovery({k: env[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL",
                                                                         "LOG_LEVEL")}, args.recovery_webhooks)

    table = render(results)
    print(table)
    write_results(results, table, args.results_dir)


async def measure_pipeline(args, results, settings, services, redis, driver, counter, run_id) -> None:
    """Phases 2 to 6: the three core services."""
    n = args.members
    env = services.env
    memory_at_start = await used_memory(redis)
    phase(f"2/8 pre-loading {n:,} identified users …")
    t0 = time.perf_counter()
    await driver.preload_users(n)
    results["preload_seconds"] = round(time.perf_counter() - t0, 1)
    # Every consumer of the profiles done with them before the import starts, the import is
    # measured alone: ingest's export view reads identity.profiles too, and left to catch up
    # during the import it was charged to it (ingest's CPU, the pipeline's rate).
    groups = [settings.group_id(service) for service in ("identity-resolution", "segment-store", EXPORT_GROUP)]
    results["preload_settle_seconds"] = await wait_until_caught_up(settings, groups, timeout=max(300, n / 1000))
    results["redis_bytes_per_profile"] = round(
        (await used_memory(redis) - memory_at_start) / n, 1)
    await counter.start()

    phase(f"3/8 importing a {n:,}-member cohort …")
    memory_before = await used_memory(redis)
    meter = CostMeter(services)
    results["pipeline"] = await measure_import(driver, counter, "bench_1", n)
    results["cost"] = meter.finish(n)
    memory_after = await used_memory(redis)
    results["redis_bytes_per_membership"] = round((memory_after - memory_before) / n, 1)
    results["pipeline"]["ratio_to_baseline"] = round(
        results["pipeline"]["changes_per_second"] / results["baseline"]["per_second"], 2)

    phase(f"4/8 latency at {args.latency_rate:,} changes/s …")
    timed = ChangeCounter(env["KAFKA_BOOTSTRAP_SERVERS"], settings.topics.membership_changes, keep_times=True)
    await timed.start()
    count = min(n, args.latency_rate * args.latency_seconds)
    settled, forks = await wait_for_redis_background(redis)
    results["latency"] = await measure_latency(driver, timed, "bench_latency", range(count), args.latency_rate)
    results["latency"]["redis_settle_seconds"] = settled
    results["latency"]["redis_forks_during"] = (await redis_background(redis))[1] - forks
    await timed.stop()

    if args.durability_members:
        phase(f"5/8 durability: {args.durability_members:,} members with appendfsync everysec, then always …")
        servers = [p for name, p in infrastructure().items() if name.startswith("redis-server")]
        if not servers:
            print("   (Redis is not a local process: its CPU is not measured)")
        cpu = lambda: sum(CostMeter._cpu(p) for p in servers)  # noqa: E731
        results["durability"] = await measure_durability(driver, counter, redis, args.durability_members, cpu)

    if not args.no_scaling:
        phase("6/8 scaling: a second identity-resolution and segment-store …")
        services.start("identity_resolution", "identity_resolution_2", IDENTITY_PORT=str(free()),
                       INSTANCE_ID=f"{run_id}-ir2")
        services.start("segment_store", "segment_store_2", SEGMENT_PORT=str(free()), INSTANCE_ID=f"{run_id}-ss2")
        await asyncio.sleep(0)
        scaled = await measure_import(driver, counter, "bench_2", n)
        scaled["ratio_to_one_instance"] = round(
            scaled["changes_per_second"] / results["pipeline"]["changes_per_second"], 2)
        results["scaling"] = scaled


def free() -> int:
    from cohort_shared.testing import free_port

    return free_port()


def machine() -> dict:
    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


if __name__ == "__main__":
    asyncio.run(main())
