"""The benchmark runs from a clean checkout and its numbers are sane (not that they are fast:
speed is read from `make bench`, never asserted in a timed test)."""

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_reports_sane_numbers(kafka_bootstrap, redis_url, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--members", "5000", "--latency-seconds", "3",
         "--no-scaling", "--delivery-events", "2000", "--recovery-webhooks", "2000", "--results-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| pipeline / baseline |" in done.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("## Benchmark")
    assert (tmp_path / "latest.png").stat().st_size > 1000
    assert results["members"] == 5000
    assert results["baseline"]["records"] == 5000 and results["baseline"]["per_second"] > 0
    pipeline = results["pipeline"]
    assert pipeline["members"] == 5000 and 0 < pipeline["seconds"] < 600
    assert pipeline["changes_per_second"] == pytest.approx(5000 / pipeline["seconds"], rel=0.01)  # seconds are rounded
    latency = results["latency"]
    assert latency["changes"] == 3000
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] < 60_000
    assert latency["redis_forks_during"] >= 0 and 0 <= latency["redis_settle_seconds"] < 180
    assert re.search(r"^\d\d:\d\d:\d\d 4/8 latency", done.stdout, re.MULTILINE)  # phases carry their start time
    assert 0 < results["redis_bytes_per_membership"] < 10_000
    services = {"ingest", "identity_resolution", "segment_store"}
    # Redis and Kafka are measured too when they run on this machine, as they do in make test.
    # On a Redis Cluster each node is its own row, named by its port.
    measured = {re.sub(r"^redis-server :\d+$", "redis-server", name) for name in results["cost"]}
    assert services <= measured <= services | {"redis-server", "kafka broker"}
    assert all(cost["cpu_seconds_per_million"] > 0 for name, cost in results["cost"].items() if name in services)
    delivery = results["delivery"]
    assert delivery["delivered"] == delivery["events"] == 2000
    assert delivery["per_second"] > 0 and delivery["http_baseline_per_second"] > 0 and delivery["fanout_per_second"] > 0
    for run in (delivery["latency"], delivery["beside_failing"]):
        assert run["events"] >= 2900 and 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] < 60_000
    lag = delivery["loop_lag"]
    assert lag["ticks"] > 0 and lag["ticks"] >= lag["late_over_50ms"] >= lag["late_over_250ms"] >= 0
    assert delivery["beside_failing"]["failing_delivered"] == 0 < delivery["beside_failing"]["failing_pending"]
    assert "| delivery: 2,000 queued events delivered to a local receiver (events/s) |" in done.stdout
    in_redis, in_table = results["recovery"]["redis"], results["recovery"]["faust_table"]
    assert in_redis["webhooks"] == in_redis["definitions_read"] == 2000
    assert 0 < in_redis["seconds_to_ready"] < 600 and 0 < in_redis["seconds_to_ready_after_kill"] < 600
    assert in_table["webhooks"] == in_table["recovered"] == 2000 and 0 < in_table["seconds_to_recovered"] < 900
    assert "faust changelog table: app start to recovery done (2,000 recovered)" in done.stdout
    # The run leaves nothing of its own in Redis (every key starts with its prefix).
    run_id = re.search(r"^benchmark (\S+):", done.stdout, re.M).group(1)
    forgot = re.search(r"forgot the run's ([\d,]+) Redis keys and (\d+) topics", done.stdout)
    assert int(forgot.group(1).replace(",", "")) > 1000 and int(forgot.group(2)) >= 10
    assert asyncio.run(keys_left(redis_url, f"{run_id}:")) == []
    assert asyncio.run(topics_left(kafka_bootstrap, run_id)) == []


async def keys_left(redis_url: str, prefix: str) -> list:
    from cohort_shared.settings import CommonSettings
    from cohort_shared.state.client import connect_state

    client = connect_state(CommonSettings(REDIS_URL=redis_url), socket_timeout=10)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*", count=5000)]
    finally:
        await client.aclose()


async def topics_left(bootstrap: str, run_id: str) -> list:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(60):  # a deletion reaches every broker's metadata a moment after it is accepted
            left = [name for name in await admin.list_topics() if name.startswith(f"{run_id}.")]
            if not left:
                break
            await asyncio.sleep(0.5)
        return left
    finally:
        await admin.close()


def test_segment_store_alone_prints_each_phase_and_forgets_its_keys(redis_url):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "segment_store_alone.py"), "--users", "600",
                           "--batch", "100"], env={**os.environ, "REDIS_URL": redis_url},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    phases = re.findall(r"^ *(.+): segment-store +([\d.]+) µs per change, Redis +([\d.]+) µs per change$",
                        done.stdout, re.MULTILINE)
    assert [p[0] for p in phases] == ["new users", "the same again", "removed"], done.stdout
    assert all(float(python) > 0 and float(redis) >= 0 for _, python, redis in phases)
    assert asyncio.run(keys_left(redis_url, "bench-ss-")) == []
