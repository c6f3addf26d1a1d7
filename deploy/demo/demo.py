"""The demo: a workspace with a few thousand sample profiles, a one-time sync and two dynamic
syncs of Mixpanel-style cohorts through the operator CLI, a segment, and a short summary.

Run by `make demo` against the running services (ports from INGEST_PORT, IDENTITY_PORT,
SEGMENT_PORT; ADMIN_TOKEN and PARTNER_API_KEYS from the environment).
"""

from __future__ import annotations

import asyncio
import collections
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
from cohort_shared.settings import CommonSettings
from cohort_shared.testing import read_topic

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".local" / "demo"
COHORT = [str(ROOT / ".venv" / "bin" / "cohort")]
URLS = {
    "ingest": f"http://127.0.0.1:{os.environ.get('INGEST_PORT', '8080')}",
    "identity": f"http://127.0.0.1:{os.environ.get('IDENTITY_PORT', '8081')}",
    "segment": f"http://127.0.0.1:{os.environ.get('SEGMENT_PORT', '8082')}",
}


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def cli(*args: str, capture: bool = False) -> str:
    env = {**os.environ, "COHORT_INGEST_URL": URLS["ingest"], "COHORT_IDENTITY_URL": URLS["identity"],
           "COHORT_SEGMENT_URL": URLS["segment"]}
    done = subprocess.run([*COHORT, *args], env=env, text=True, capture_output=capture)
    if done.returncode != 0:
        sys.exit(f"cohort {args[0]} failed:\n{done.stderr if capture else ''}")
    return done.stdout if capture else ""


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sample_profiles() -> Path:
    """2,000 identified users (300 with an email alias), 500 anonymous devices, 200 alias-only
    leads, and 300 anonymous devices later identified."""
    rows = [[f"user-{i}", "", f"user{i}@example.com" if i < 300 else "", "email" if i < 300 else "", ""]
            for i in range(2000)]
    rows += [["", f"dev-{i}", "", "", ""] for i in range(500)]
    rows += [["", "", f"lead-{i}@example.com", "email", ""] for i in range(200)]
    rows += [["", f"dev-late-{i}", "", "", f"late-{i}"] for i in range(300)]
    return write_csv(WORK / "profiles.csv", ["external_id", "device_id", "alias_name", "alias_label",
                                             "identify_external_id"], rows)


def churn_export(sync: int) -> Path:
    """The "Churn risk" cohort as Mixpanel would export it at each sync: people enter and leave."""
    users = set(range(0, 1000))
    if sync >= 2:
        users = (users - set(range(0, 100))) | set(range(1000, 1150))
    if sync >= 3:
        users = (users - set(range(1000, 1050))) | set(range(1500, 1600))
    rows = [[f"user-{i}", "", "", ""] for i in sorted(users)]
    rows += [["", f"dev-{i}", "", ""] for i in range(200)]                       # anonymous: match by device
    rows += [["", "", f"lead-{i}@example.com", "email"] for i in range(100)]     # alias-only users
    rows += [["", f"dev-late-{i}", "", ""] for i in range(50)]                   # device of an identified user
    rows += [[f"ghost-{i}", "", "", ""] for i in range(30)]                      # not (yet) known
    rows += [["null", "", "", ""]]                                               # a bogus identifier
    return write_csv(WORK / "churn.csv", ["user_id", "device_id", "alias_name", "alias_label"], rows)


def power_export() -> Path:
    return write_csv(WORK / "power.csv", ["user_id", "device_id", "alias_name", "alias_label"],
                     [[f"user-{i}", "", "", ""] for i in range(500, 1500)])


def admin_get(client: httpx.Client, service: str, path: str) -> dict:
    answer = client.get(f"{URLS[service]}/workspaces/{WS}{path}",
                        headers={"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"})
    answer.raise_for_status()
    return answer.json()


def wait_until_settled(client: httpx.Client, cohort_id: str, timeout: float = 120) -> dict:
    """Until every identifier sent is accounted for in the sync report, and it stops moving."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        cohort = admin_get(client, "segment", f"/cohorts/{cohort_id}")
        report = cohort["sync_report"]
        done = (report["applied"] + report["already_in_state"] + sum(report["unmatched"].values())
                + sum(report["dropped"].values()))
        if done >= report["received"] and cohort == last:
            return cohort
        last = cohort
        time.sleep(1.0)
    sys.exit(f"cohort {cohort_id} did not settle within {timeout:.0f} s")


WS = f"demo-{uuid.uuid4().hex[:6]}"


def main() -> None:
    partner_key = dict(p.split("=", 1) for p in os.environ["PARTNER_API_KEYS"].split(","))["mixpanel"]
    state = str(WORK / "snapshots")
    print(f"Cohort Import demo in workspace {WS}")

    step("An operator creates a data import key (shown once) for Mixpanel")
    key = json.loads(cli("--json", "keys", "create", WS, capture=True))
    os.environ["COHORT_DATA_IMPORT_KEY"] = key["data_import_key"]
    os.environ["COHORT_PARTNER_KEY"] = partner_key
    print(f"key {key['key_id']} for REST endpoint {key['rest_endpoint']}")

    step("Loading 3,000 sample profiles: identified, anonymous, alias-only, and devices later identified")
    cli("profiles", "load", WS, str(sample_profiles()))

    sync = ["sync", "--workspace", WS, "--state-dir", state, "--concurrency", "4"]
    step("One-time sync of 'Power users'; first sync of the dynamic cohort 'Churn risk'")
    cli(*sync, "--cohort-id", "mp_power", "--name", "Power users", str(power_export()))
    cli(*sync, "--cohort-id", "mp_churn", "--name", "Churn risk", str(churn_export(1)))

    with httpx.Client(timeout=30) as client:
        wait_until_settled(client, "mp_churn")
        step("Ten of the unknown people sign up; their parked changes apply now")
        write_csv(WORK / "late.csv", ["external_id"], [[f"ghost-{i}"] for i in range(10)])
        cli("profiles", "load", WS, str(WORK / "late.csv"))

        step("Two dynamic syncs: only who entered and who left is sent")
        for n in (2, 3):
            cli(*sync, "--cohort-id", "mp_churn", "--name", "Churn risk", str(churn_export(n)))
            wait_until_settled(client, "mp_churn")

        step("A segment: churn risk, but not power users")
        segment_filter = {"all": [{"Mixpanel_Cohorts": {"includes": ["mp_churn"]}},
                                  {"Mixpanel_Cohorts": {"excludes": ["mp_power"]}}]}
        created = json.loads(cli("--json", "segments", "create", WS, "Churn risk, not power users", "--filter",
                                 json.dumps(segment_filter), capture=True))
        churn = wait_until_settled(client, "mp_churn")
        power = wait_until_settled(client, "mp_power")
        segment = admin_get(client, "segment", f"/segments/{created['segment_id']}")
        usage = admin_get(client, "segment", "/usage")
    events = asyncio.run(count_events())
    summary(churn, power, segment, usage, events)


async def count_events() -> collections.Counter:
    settings = CommonSettings()
    records = await read_topic(settings.kafka_bootstrap_servers, settings.topics.membership_changes,
                               expected=10**9, timeout=5)
    counter: collections.Counter = collections.Counter()
    for record in records:
        event = orjson.loads(record.value)
        if event["workspace_id"] == WS:
            counter[(event["cohort_id"], event["change"], event["cause"])] += 1
    return counter


def summary(churn: dict, power: dict, segment: dict, usage: dict, events: collections.Counter) -> None:
    step("Summary")
    for cohort in (churn, power):
        report = cohort["sync_report"]
        print(f"{cohort['name']} ({cohort['cohort_id']}): {cohort['member_count']:,} members; "
              f"received {report['received']:,}, applied {report['applied']:,}, "
              f"already in state {report['already_in_state']:,}")
        for reason, count in sorted(report["unmatched"].items()):
            print(f"    unmatched {reason}: {count:,}")
    print(f"Segment '{segment['name']}': {segment['size']:,} users")
    print(f"Data points used: {usage['data_points']:,}")
    print("Change events seen on membership.changes:")
    for (cohort_id, change, cause), count in sorted(events.items()):
        print(f"    {cohort_id:10} {change:8} {cause:14} {count:,}")


if __name__ == "__main__":
    main()
