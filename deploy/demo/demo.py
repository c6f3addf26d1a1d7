"""The demo: a workspace with a few thousand sample profiles, a one-time sync and two dynamic
syncs of Mixpanel-style cohorts through the operator CLI, a segment, and a short summary.

Run by `make demo` against the running services (ports from INGEST_PORT, IDENTITY_PORT,
SEGMENT_PORT; ADMIN_TOKEN and PARTNER_API_KEYS from the environment).

The services work asynchronously behind ingest's 202s, so after each step the demo waits,
with a deadline, for the state the next step needs (profiles known to identity-resolution,
a cohort present and every identifier sent accounted for in segment-store, the change
events all on the topic) instead of assuming a step is done when its request returns.
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
from aiokafka import AIOKafkaConsumer
from cohort_shared.settings import CommonSettings

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


class NotYet(Exception):
    """What a step waits for is not there yet (a 404, a count still moving)."""


def admin_get(client: httpx.Client, service: str, path: str) -> dict:
    answer = client.get(f"{URLS[service]}/workspaces/{WS}{path}",
                        headers={"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"})
    if answer.status_code == 404:  # not consumed yet: the services apply Kafka records asynchronously
        raise NotYet(f"GET {path}: 404 {answer.json().get('message', '')}")
    answer.raise_for_status()
    return answer.json()


def wait_for(what: str, probe, timeout: float = 120, every: float = 0.25):
    """Call `probe` until it returns something other than None (NotYet counts as None);
    exit with the last reason at the deadline. Never a bare sleep: each step waits for a fact."""
    deadline, reason = time.monotonic() + timeout, "nothing seen yet"
    while True:
        try:
            result = probe()
            if result is not None:
                return result
        except NotYet as not_yet:
            reason = str(not_yet)
        except httpx.TransportError as error:  # a service restarting under us: try again
            reason = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what} ({reason})")
        time.sleep(every)


def wait_until_identities_known(client: httpx.Client, user_refs: list[str]) -> None:
    """Until identity-resolution knows every one of `user_refs`, so cohort changes sent next
    match instead of being parked (identity.events and cohort.changes are separate topics)."""
    pending = list(user_refs)

    def probe() -> bool | None:
        while pending:
            answer = client.get(f"{URLS['identity']}/workspaces/{WS}/identities/{pending[-1]}",
                                headers={"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"})
            if answer.status_code == 404:
                raise NotYet(f"{pending[-1]} not known yet; {len(pending)} of {len(user_refs)} to go")
            answer.raise_for_status()
            pending.pop()
        return True

    wait_for(f"{len(user_refs)} profiles in identity-resolution", probe)


def wait_until_settled(client: httpx.Client, cohort_id: str, sent: int, timeout: float = 120) -> dict:
    """Until segment-store has the cohort, its sync report has received at least the `sent`
    identifiers (retries count again, so it may be more), every received one is accounted for
    (applied, already in state, unmatched or dropped), and two reads in a row agree."""
    last: list[dict] = []

    def probe() -> dict | None:
        cohort = admin_get(client, "segment", f"/cohorts/{cohort_id}")
        report = cohort["sync_report"]
        done = (report["applied"] + report["already_in_state"] + sum(report["unmatched"].values())
                + sum(report["dropped"].values()))
        if report["received"] < sent:
            raise NotYet(f"{cohort_id}: received {report['received']} of the {sent} sent")
        if done < report["received"]:
            raise NotYet(f"{cohort_id}: {done} of {report['received']} received accounted for")
        settled = bool(last) and last[0] == cohort
        last[:] = [cohort]
        return cohort if settled else None

    return wait_for(f"cohort {cohort_id} to settle", probe, timeout, every=0.5)


def wait_until_member(client: httpx.Client, user_refs: list[str], cohort_id: str) -> None:
    """Until segment-store lists each of `user_refs` as a member of `cohort_id`."""
    pending = list(user_refs)

    def probe() -> bool | None:
        while pending:
            cohorts = admin_get(client, "segment", f"/users/{pending[-1]}/cohorts")["cohorts"]
            if cohort_id not in {c["cohort_id"] for c in cohorts}:
                raise NotYet(f"{pending[-1]} not in {cohort_id} yet; {len(pending)} to go")
            pending.pop()
        return True

    wait_for(f"{len(user_refs)} late sign-ups to join {cohort_id}", probe)


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

    sent: collections.Counter = collections.Counter()  # identifiers sent per cohort, over every sync

    def sync(cohort_id: str, name: str, export: Path) -> None:
        report = json.loads(cli("--json", "sync", "--workspace", WS, "--state-dir", state, "--concurrency", "4",
                                "--cohort-id", cohort_id, "--name", name, str(export), capture=True))
        sent[cohort_id] += report["adds"] + report["removes"]
        kind = "first sync" if report["first_sync"] else "diff"
        print(f"sync {report['sync']} of {cohort_id}: {kind}: sent {report['adds']:,} adds, "
              f"{report['removes']:,} removes; accepted {report['accepted']:,}")

    with httpx.Client(timeout=30) as client:
        step("Loading 3,000 sample profiles: identified, anonymous, alias-only, and devices later identified")
        cli("profiles", "load", WS, str(sample_profiles()))
        # The cohorts below name these people; wait until identity-resolution knows each of
        # the last kind loaded (identify comes last, after every track and alias request).
        wait_until_identities_known(client, [f"external_id:late-{i}" for i in range(300)])

        step("One-time sync of 'Power users'; first sync of the dynamic cohort 'Churn risk'")
        sync("mp_power", "Power users", power_export())
        sync("mp_churn", "Churn risk", churn_export(1))
        wait_until_settled(client, "mp_churn", sent["mp_churn"])

        step("Ten of the unknown people sign up; their parked changes apply now")
        late = [f"ghost-{i}" for i in range(10)]
        write_csv(WORK / "late.csv", ["external_id"], [[user] for user in late])
        cli("profiles", "load", WS, str(WORK / "late.csv"))
        wait_until_member(client, [f"external_id:{user}" for user in late], "mp_churn")

        step("Two dynamic syncs: only who entered and who left is sent")
        for n in (2, 3):
            sync("mp_churn", "Churn risk", churn_export(n))
            wait_until_settled(client, "mp_churn", sent["mp_churn"])

        step("A segment: churn risk, but not power users")
        segment_filter = {"all": [{"Mixpanel_Cohorts": {"includes": ["mp_churn"]}},
                                  {"Mixpanel_Cohorts": {"excludes": ["mp_power"]}}]}
        created = json.loads(cli("--json", "segments", "create", WS, "Churn risk, not power users", "--filter",
                                 json.dumps(segment_filter), capture=True))
        churn = wait_until_settled(client, "mp_churn", sent["mp_churn"])
        power = wait_until_settled(client, "mp_power", sent["mp_power"])
        segment = admin_get(client, "segment", f"/segments/{created['segment_id']}")
        usage = admin_get(client, "segment", "/usage")
    members = {churn["cohort_id"]: churn["member_count"], power["cohort_id"]: power["member_count"]}
    events = asyncio.run(count_events(members))
    summary(churn, power, segment, usage, events)


async def count_events(members: dict[str, int], timeout: float = 60) -> collections.Counter:
    """This workspace's events on membership.changes, read (committed only) from the start
    until, for every cohort, adds minus removes equals its member count: the events of the
    last changes may still be on their way when the counts have settled."""
    settings = CommonSettings()
    consumer = AIOKafkaConsumer(settings.topics.membership_changes, bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed", group_id=None)
    counter: collections.Counter = collections.Counter()

    def net(cohort_id: str) -> int:
        return sum((1 if change == "added" else -1) * count
                   for (cohort, change, _), count in counter.items() if cohort == cohort_id)

    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    event = orjson.loads(record.value)
                    if event["workspace_id"] == WS:
                        counter[(event["cohort_id"], event["change"], event["cause"])] += 1
            if all(net(cohort_id) == count for cohort_id, count in members.items()):
                return counter
            if time.monotonic() >= deadline:
                seen = {cohort_id: net(cohort_id) for cohort_id in members}
                sys.exit(f"membership.changes: net events {seen} never matched the member counts {members}")
    finally:
        await consumer.stop()


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
