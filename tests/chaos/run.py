"""`make chaos`: the fault-injection suite of docs/fault-injection.md, as a black box.

    python -m tests.chaos [--profile full|ci] [--seed N] [--no-faults] [--no-fuzz]

Needs Kafka and Redis (KAFKA_BOOTSTRAP_SERVERS, REDIS_URL; `make chaos` starts them with
deploy/local/stack.sh, which the broker and Redis faults also go through). Starts ingest x1,
identity-resolution x2, segment-store x2 and delivery (x2, ci x1) as processes with a fresh
topic and key prefix, points a webhook at a receiver of its own, creates profiles, runs a
paced import with merges and deletes interleaved while faults are injected, waits until the
output settles, checks it against an independent oracle and the receiver against the change
stream, fuzzes each API, prints the table and writes tests/chaos/results/latest.{md,json}.
Exit code 1 when a count that must be zero is not. Everything it started is stopped, whatever
happens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import secrets
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: tests/chaos/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.chaos"

from cohort_shared.settings import CommonSettings  # noqa: E402
from cohort_shared.state.client import connect_state  # noqa: E402
from cohort_shared.testing import forget_keys, forget_topics  # noqa: E402

from .api import SystemApi  # noqa: E402
from .faults import FaultInjector, plan_faults  # noqa: E402
from .fleet import Fleet, unready_details  # noqa: E402
from .fuzz import fuzz_service  # noqa: E402
from .infra import Infra  # noqa: E402
from .oracle import Oracle  # noqa: E402
from .outcome import check_everything  # noqa: E402
from .prelude import run_prelude  # noqa: E402
from .producer import Sent, run_import, run_profile_ops  # noqa: E402
from .profiles import PROFILES, Profile  # noqa: E402
from .report import RESULTS, Row, machine, render, write  # noqa: E402
from .retrying import RetryingClient  # noqa: E402
from .table import build_rows  # noqa: E402
from .webhooks import WebhookWatch  # noqa: E402
from .workload import build_workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORKSPACE = "chaos"
# Where the run is, for the report written when it is cancelled half-way.
progress: dict = {"phase": "start-up"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--seed", type=int, help="reproduce a run's workload and fault plan")
    parser.add_argument("--no-faults", action="store_true", help="the same run without any fault: all counts 0")
    parser.add_argument("--no-fuzz", action="store_true", help="skip the schemathesis part")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's Redis keys and topics even if it passes (a failed run always keeps them)")
    return parser.parse_args(argv)


def service_env(profile: Profile, run_id: str, token: str, partner_keys: dict[str, str]) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "TOPIC_PREFIX": f"{run_id}.", "REDIS_KEY_PREFIX": f"{run_id}:", "TOPIC_PARTITIONS": "6",
        "ADMIN_TOKEN": token, "PARTNER_API_KEYS": ",".join(f"{p}={k}" for p, k in partner_keys.items()),
        "SEGMENT_SESSION_TIMEOUT_MS": str(profile.segment_session_timeout_ms),
        "DELIVERY_SESSION_TIMEOUT_MS": str(profile.segment_session_timeout_ms),
        "DELIVERY_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # The receiver listens on 127.0.0.1; retries come back quickly after a fault.
        "WEBHOOK_ALLOW_PRIVATE": "true", "DELIVERY_RETRY_BASE_SECONDS": "0.2", "DELIVERY_RETRY_MAX_DELAY_SECONDS": "2",
        "DELIVERY_BREAKER_COOLDOWN_SECONDS": "1", **profile.service_env,
    }


async def run(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    run_id = f"chaos{seed:x}{secrets.token_hex(2)}"
    token, partner_keys = secrets.token_urlsafe(16), {"mixpanel": secrets.token_urlsafe(12),
                                                      "amplitude": secrets.token_urlsafe(12)}
    env = service_env(profile, run_id, token, partner_keys)
    brokers = len(env["KAFKA_BOOTSTRAP_SERVERS"].split(","))
    progress.update(machine=machine(), profile=profile.name, seed=seed, run_id=run_id, brokers=brokers,
                    faults=not args.no_faults, durations={})
    print(f"chaos {run_id}: profile {profile.name}, seed {seed} (--seed {seed} reproduces it), {brokers} broker(s), "
          f"faults {'off' if args.no_faults else 'on'}", flush=True)
    workload = build_workload(profile, random.Random(seed))
    plan = [] if args.no_faults else plan_faults(profile.faults, profile.import_seconds, random.Random(seed + 1))
    logs = ROOT / ".local" / "chaos" / run_id
    logs.mkdir(parents=True, exist_ok=True)
    print(f"  logs: {logs}", flush=True)
    fleet = Fleet(env, logs, {"ingest": 1, "identity_resolution": 2, "segment_store": 2,
                              "delivery": profile.delivery_instances})
    infra = Infra(env["KAFKA_BOOTSTRAP_SERVERS"], env["REDIS_URL"], logs / "stack.log")
    client = RetryingClient(time.monotonic() + 240, random.Random(seed + 2))
    api = SystemApi(client, fleet, WORKSPACE, token, partner_keys)
    durations: dict[str, float] = progress["durations"]
    supervisor = faults = None
    forget = False
    watch = WebhookWatch(api)
    try:
        phase = time.monotonic()
        for instance in fleet.instances:
            fleet.start(instance)
        readiness = await fleet.wait_ready(120)
        if any(s != (200, 200) for s in readiness.values()):
            raise RuntimeError(f"services did not start: {unready_details(fleet, readiness)}")
        supervisor = asyncio.create_task(fleet.supervise())
        await watch.start()
        oracle, sent = Oracle(), Sent()
        print(f"1/4 prelude: {len(workload.profile_ops):,} profiles, {len(workload.volatile_prelude)} volatile "
              f"membership requests …", flush=True)
        progress["phase"] = "prelude"
        user_ids = await run_prelude(api, workload, oracle, sent, timeout=180)
        durations["prelude"] = time.monotonic() - phase

        phase = time.monotonic()
        changes = sum(len(r.changes) for r in workload.imports)
        print(f"2/4 import: {changes:,} changes in {len(workload.imports)} requests over ~{profile.import_seconds:.0f} s, "
              f"{len(workload.volatile_ops)} merges/deletes, {len(plan)} faults …", flush=True)
        client.deadline = time.monotonic() + 2.5 * profile.import_seconds + 180
        injector = FaultInjector(fleet, infra, random.Random(seed + 3), profile.segment_session_timeout_ms / 1000 + 10,
                                 env["TOPIC_PREFIX"], run_id, client.deadline)
        progress["phase"] = "import"
        faults = asyncio.create_task(injector.run(plan, time.monotonic()))
        await asyncio.gather(run_import(api, workload.imports, sent, profile.import_seconds, profile.concurrency),
                             run_profile_ops(api, workload.volatile_ops, sent, 0.9 * profile.import_seconds))
        try:
            await asyncio.wait_for(faults, timeout=max(1.0, client.deadline - time.monotonic()))
        except Exception as error:  # noqa: BLE001 - reported; the checks still run
            print(f"  fault injection ended with {error!r}", flush=True)
        durations["import"] = time.monotonic() - phase

        phase = time.monotonic()
        print("3/4 settling and checking …", flush=True)
        progress["phase"] = "settle and check"
        client.deadline = time.monotonic() + 600
        findings = await check_everything(api, fleet, env, workload, oracle, sent, user_ids, injector, profile, watch)
        durations["settle and check"] = time.monotonic() - phase

        if not args.no_fuzz:
            phase = time.monotonic()
            print("4/4 fuzzing each API with schemathesis …", flush=True)
            progress["phase"] = "fuzzing"
            partner_env = {"CHAOS_FUZZ_PARTNER_KEYS": env["PARTNER_API_KEYS"], "CHAOS_FUZZ_CLIENT_SECRET": api.secret}
            for module in ("ingest", "identity_resolution", "segment_store", "delivery"):
                findings.fuzz.append(await fuzz_service(module, fleet.of(module)[0].url, token, profile.fuzz_examples,
                                                        seed, logs / "fuzz", timeout=600, partner_env=partner_env))
            # The Braze REST API once more with a REST API key, so fuzzing gets past its 401; the
            # key is of a workspace of its own, so fuzzed deletes and merges leave the checked one alone.
            rest_api_key = await api.create_rest_api_key(f"{api.ws}-fuzz")
            if rest_api_key:
                findings.fuzz.append(await fuzz_service("ingest-braze-rest", fleet.of("ingest")[0].url, rest_api_key,
                                                        profile.fuzz_examples, seed, logs / "fuzz", timeout=600,
                                                        paths="^/users/"))
            findings.readiness_after_fuzz = await fleet.wait_ready(60)
            durations["fuzzing"] = time.monotonic() - phase
        rows = build_rows(findings, fleet, not args.no_faults)
        meta = {"machine": machine(), "profile": profile.name, "seed": seed, "run_id": run_id, "brokers": brokers,
                "faults": not args.no_faults, "durations": durations, "logs": str(logs.relative_to(ROOT))}
        notes = [f"{cohort}: {'; '.join(problems)}" for cohort, problems in sorted(findings.reports.items()) if problems]
        notes += findings.notes
        notes += [f"after fuzzing: {d}" for d in unready_details(fleet, findings.readiness_after_fuzz)]
        notes += [f"fuzz {r.service}: {e}" for r in findings.fuzz for e in r.examples]
        notes += [f"fault timeline: {line}" for line in injector.timeline]
        print(render(meta, rows), flush=True)
        for note in notes:
            print(f"  note: {note}")
        write(meta, rows, notes, args.results_dir)
        failed = any(r.failed for r in rows)
        forget = not failed and not args.keep
        return 1 if failed else 0
    except Exception as error:  # noqa: BLE001 - the suite itself could not go on: say where, in the report too
        print(f"chaos: the run stopped during {progress['phase']}: {error!r}; logs in {logs}", flush=True)
        write_stopped(f"stopped during {progress['phase']}: {error!r}"[:300], args.results_dir)
        return 2
    finally:
        for task in (supervisor, faults):
            if task:
                task.cancel()
        try:
            await asyncio.wait_for(infra.restore(), 240)
        except Exception as error:  # noqa: BLE001 - stopping everything still comes next
            print(f"could not restore Kafka/Redis: {error!r}", flush=True)
        fleet.stop_all()
        await watch.stop()
        await client.aclose()
        if forget:  # after the services stopped, so that none writes a key again
            await forget_run(env, run_id)


async def forget_run(env: dict[str, str], run_id: str) -> None:
    """A passing run's keys and topics are of no more use, and left in a Redis and broker that
    outlive it they slow every later run; a failing run's stay for the post-mortem."""
    settings = CommonSettings(**{name: env[name] for name in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")})
    redis = connect_state(settings, socket_timeout=30)
    try:
        keys = await forget_keys(redis, env["REDIS_KEY_PREFIX"])
        topics = await forget_topics(settings.kafka_bootstrap_servers, env["TOPIC_PREFIX"])
        print(f"forgot the run's {keys:,} Redis keys and {topics} topics (--keep keeps them)", flush=True)
    except Exception as error:  # noqa: BLE001 - the verdict stands; only the tidying failed
        print(f"could not forget the run's keys and topics: {error!r}", flush=True)
    finally:
        await redis.aclose()


def write_stopped(what: str, results_dir: Path) -> None:
    """A report for a run that did not get to its checks, so nobody reads an older one as its result."""
    if "seed" in progress:
        meta = {k: v for k, v in progress.items() if k != "phase"}
        write(meta, [Row("run", what, 1, True)], [], results_dir)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    deadline = PROFILES[args.profile].deadline_seconds

    async def guarded() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
            loop.add_signal_handler(signum, task.cancel)
        signal.alarm(int(deadline))  # the run can never hang: at the deadline it is cancelled, then cleaned up
        return await run(args)

    try:
        code = asyncio.run(guarded())
    except asyncio.CancelledError:
        print(f"chaos: cancelled (signal or the {deadline:.0f} s deadline); everything started was stopped", flush=True)
        write_stopped(f"cancelled during {progress['phase']} (signal or deadline)", args.results_dir)
        code = 3
    sys.exit(code)


if __name__ == "__main__":
    main()
