"""The benchmark's table (markdown), its JSON, and its plot."""

from __future__ import annotations

import json
from pathlib import Path

from recovery import recovery_rows


def render(r: dict) -> str:
    base = r["baseline"]
    lines = [
        f"## Benchmark: {r['members']:,} members, {r['concurrency']} concurrent producers",
        f"Machine: {r['machine']['cpus']} cores, {r['machine']['memory_gib']} GiB, Python {r['machine']['python']}; "
        "Kafka, Redis, the services, the webhook receiver and the load generator all on it. "
        f"Redis: {r.get('redis_mode', 'single server')}; Kafka: {r.get('kafka_brokers', 1)} broker(s).",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| baseline: one Kafka hop in Python (records/s) | {base['per_second']:,} | |",
    ]
    if "pipeline" in r:
        lines += pipeline_rows(r)
    if "delivery" in r:
        lines += delivery_rows(r["delivery"])
    if "recovery" in r:
        lines += recovery_rows(r["recovery"])
    return "\n".join(lines) + "\n"


def delivery_rows(d: dict) -> list[str]:
    lat, beside, lag = d["latency"], d["beside_failing"], d["loop_lag"]
    return [
        f"| baseline: signed HTTP POSTs straight to the receiver, 64 in flight (requests/s) | "
        f"{d['http_baseline_per_second']:,} | |",
        f"| delivery: {d['events']:,} queued events delivered to a local receiver (events/s) | {d['per_second']:,} | ≥ 5,000 |",
        f"| delivery / HTTP baseline | {d['ratio_to_http_baseline']} | |",
        f"| delivery: fan-out of membership.changes into the webhook queue (events/s) | {d['fanout_per_second']:,} | |",
        f"| delivery's event loop over fan-out and sending: 50 ms ticks / late by > 50 ms / > 250 ms / all within (ms) | "
        f"{lag['ticks']:,} / {lag['late_over_50ms']:,} / {lag['late_over_250ms']:,} / {lag['all_within_ms']} | |",
        f"| delivery latency, change → verified delivery at {lat['rate']:,} events/s: p50 / p95 / p99 (ms) | "
        f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']} | p99 < 200 |",
        f"| the same events also to a webhook answering 500, at {beside['rate']:,} events/s: p50 / p95 / p99 (ms) | "
        f"{beside['p50_ms']} / {beside['p95_ms']} / {beside['p99_ms']} | p99 < 200 |",
    ]


def pipeline_rows(r: dict) -> list[str]:
    pipe = r["pipeline"]
    lines = [
        f"| pipeline: cohort import, first request to last change event (changes/s) | {pipe['changes_per_second']:,} | |",
        f"| pipeline / baseline | {pipe['ratio_to_baseline']} | ≥ 0.5 |",
        f"| cohort of {r['members']:,} imported end to end (s) | {pipe['seconds']} | < 20 for 1,000,000 |",
        f"| all 202s received after (s) | {pipe['http_seconds']} | |",
    ]
    if "latency" in r:
        lat = r["latency"]
        lines += [
            f"| latency 202 → event at {lat['rate']:,} changes/s: p50 / p95 / p99 (ms) | "
            f"{lat['p50_ms']} / {lat['p95_ms']} / {lat['p99_ms']} | p99 < 100 |",
        ]
        if "redis_forks_during" in lat:
            lines.append(f"| the same run: Redis AOF rewrites or saves during it / waited first for the import's to end (s) | "
                         f"{lat['redis_forks_during']} / {lat['redis_settle_seconds']} | |")
    lines.append(f"| Redis memory per membership (bytes) | {r['redis_bytes_per_membership']} | < 100 |")
    costs = r.get("cost", {})
    for name, cost in costs.items():
        lines.append(f"| {name}: CPU s per million changes / peak RSS (MiB) | "
                     f"{cost['cpu_seconds_per_million']} / {cost['peak_rss_mib']} | |")
    if costs:
        redis = [c["cpu_seconds_per_million"] for name, c in costs.items() if name.startswith("redis-server")]
        shards = f" ({len(redis)} shards)" if len(redis) > 1 else ""
        lines.append(f"| Redis{shards}: CPU s per million changes | {round(sum(redis), 1)} | ≤ 15 |")
        lines.append(f"| every process (services, Redis, Kafka): CPU s per million changes | "
                     f"{round(sum(c['cpu_seconds_per_million'] for c in costs.values()), 1)} | ≤ 50 |")
    if "scaling" in r:
        s = r["scaling"]
        lines.append(f"| two instances of identity-resolution and segment-store (changes/s, ratio to one) | "
                     f"{s['changes_per_second']:,} ({s['ratio_to_one_instance']}×) | 2 cores: overhead, not speed-up |")
    if "durability" in r:
        d = r["durability"]
        for mode in ("everysec", "always"):
            run = d[mode]
            lines.append(f"| Redis appendfsync {mode}: {run['members']:,}-member import (changes/s) / Redis CPU s per "
                         f"million | {run['changes_per_second']:,} / {run['redis_cpu_seconds_per_million']} | |")
        lines.append(f"| appendfsync always / everysec (throughput) | {d['always_to_everysec']} | |")
    lines.append(f"| pre-loading {r['members']:,} users through the profile API: requests / until every service "
                 f"caught up (s) | {r.get('preload_seconds')} / {r.get('preload_settle_seconds')} | |")
    if "redis_bytes_per_profile" in r:
        lines.append(f"| Redis memory per pre-loaded profile, both services' tables (bytes) | "
                     f"{r['redis_bytes_per_profile']} | |")
    return lines


def write_results(results: dict, table: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.md").write_text(table)
    (folder / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    try:
        plot(results, folder / "latest.png")
    except ImportError:
        print("matplotlib missing: no plot")
    print(f"results in {folder}/latest.md, latest.json, latest.png")


def plot(r: dict, path: Path) -> None:
    if "pipeline" not in r:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["one Kafka hop\n(baseline)", "pipeline,\none instance each"]
    values = [r["baseline"]["per_second"], r["pipeline"]["changes_per_second"]]
    if "scaling" in r:
        labels.append("pipeline, two IR\n+ two SS instances")
        values.append(r["scaling"]["changes_per_second"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(labels, values, color=["#888", "#3a7", "#37a"][: len(values)])
    left.set_ylabel("records or changes per second")
    left.set_title(f"Throughput, {r['members']:,} members")
    if "latency" in r:
        lat = r["latency"]
        right.bar(["p50", "p95", "p99"], [lat["p50_ms"], lat["p95_ms"], lat["p99_ms"]], color="#a73")
        right.axhline(100, linestyle="--", color="#444", label="target p99")
        right.set_ylabel("ms from 202 to change event")
        right.set_title(f"Latency at {lat['rate']:,} changes/s")
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
