"""`cohort sync`: the Mixpanel-style producer, once or on an interval ("dynamic" cohorts)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..context import CliState, check_partner, check_workspace
from ..exports import read_cohort_export
from ..http_client import ApiError
from ..producer.partner_api import PartnerApi, PartnerCredentials
from ..producer.snapshots import SnapshotKey, SnapshotStore
from ..producer.sync import CohortSync, plan_sync, sync_cohort
from ..progress import progress_bar
from ..render import fail, print_json, reporting_errors, scrub, stderr
from .options import Concurrency, MaxAttempts, RetryBaseDelay, retry_policy


def sync_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="cohort export, CSV or JSON Lines: user_id, device_id, alias_name, alias_label (optional timestamp)"
        ),
    ],
    cohort_id: Annotated[str, typer.Option(help="the partner's cohort ID, e.g. mp_12345")],
    partner_key: Annotated[
        str, typer.Option(envvar="COHORT_PARTNER_KEY", show_default=False, help="the partner API key")
    ],
    data_import_key: Annotated[
        str, typer.Option(envvar="COHORT_DATA_IMPORT_KEY", show_default=False, help="the workspace's data import key")
    ],
    name: Annotated[str | None, typer.Option(help="cohort name (default: the cohort ID)")] = None,
    partner: Annotated[str, typer.Option(callback=check_partner, help="partner path segment")] = "mixpanel",
    workspace: Annotated[
        str | None,
        typer.Option(callback=check_workspace, help="names the snapshot folder (default: a digest of the key)"),
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="where the last successful snapshots live")] = Path(
        ".local/snapshots"
    ),
    created_at: Annotated[
        str | None, typer.Option(help="the cohort's creation time, ISO-8601 with a zone (default: its first sync)")
    ] = None,
    dynamic: Annotated[bool, typer.Option(help="re-read FILE and re-sync every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(min=0.0, help="seconds between dynamic syncs")] = 60.0,
    max_syncs: Annotated[int | None, typer.Option(min=1, help="stop after this many dynamic syncs")] = None,
    concurrency: Concurrency = 4,
    max_attempts: MaxAttempts = 6,
    retry_base_delay: RetryBaseDelay = 0.5,
) -> None:
    """Sync a cohort export like Mixpanel: all members first, then only what changed."""
    state: CliState = ctx.obj
    credentials = PartnerCredentials(partner, state.keep_secret(partner_key), state.keep_secret(data_import_key))
    created = _aware_time(created_at, state)
    key = (
        SnapshotKey(workspace, partner, cohort_id)
        if workspace
        else SnapshotKey.for_key(state.ingest_url, data_import_key, partner, cohort_id)
    )
    job = CohortSync(cohort_id, name or cohort_id, key, created, concurrency)
    policy = retry_policy(max_attempts, retry_base_delay)
    runs = (max_syncs or 0) if dynamic else 1

    async def run_syncs() -> bool:
        async with state.async_client(state.ingest_url, admin=False) as client:
            api = PartnerApi(client, credentials, policy, state.hooks.sleep)
            store = SnapshotStore(state_dir)
            done = 0
            while True:
                done += 1
                succeeded = await _sync_once(state, api, store, job, file)
                if not succeeded and not dynamic:
                    return False
                if runs and done >= runs:
                    return succeeded
                await state.hooks.sleep(interval)

    with reporting_errors(state):
        try:
            succeeded = asyncio.run(run_syncs())
        except KeyboardInterrupt:
            fail("interrupted; the snapshot still holds the last successful sync", state, 130)
    if not succeeded:
        raise typer.Exit(1)


def _aware_time(text: str | None, state: CliState) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        fail("--created-at must be an ISO-8601 time with a zone, e.g. 2026-01-21T19:20:30+05:00", state, 2)
    return moment


async def _sync_once(state: CliState, api: PartnerApi, store: SnapshotStore, job: CohortSync, file: Path) -> bool:
    """One sync, its summary printed, numbered from the cohort's snapshot history (a failed
    sync keeps its number for the next try). A 4xx raises (the same request would fail the
    same way, whatever the mode); a transient failure (retries exhausted) returns False so a
    dynamic run can try again at the next interval."""
    members = read_cohort_export(file)
    plan = plan_sync(store, job, members)
    number = plan.number
    with progress_bar(f"sync {number} of {job.cohort_id}") as bar:
        try:
            report = await sync_cohort(api, store, job, members, bar.advance, bar.plan, plan)
        except ApiError as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 429:
                raise
            message = escape(scrub(str(error), state.secrets))
            stderr().print(f"[bold red]sync {number} failed:[/] {message}; the snapshot is left as it was")
            return False
    if state.as_json:
        print_json({"sync": number, "cohort_id": job.cohort_id, **asdict(report)})
    else:
        typer.echo(f"sync {number} of {job.cohort_id}: {report.summary()}")
    return True
