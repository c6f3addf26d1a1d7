"""`cohort profiles load`: create the users a cohort import can match (docs/producer-api.md profile identity API)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from ..backoff import RetryPolicy
from ..context import CliState, check_workspace
from ..http_client import checked, run_bounded, send_with_retries
from ..profiles import ProfileRequest, profile_requests, read_profiles
from ..progress import ProgressBar, progress_bar
from ..render import print_json, reporting_errors
from .options import Concurrency, MaxAttempts, RetryBaseDelay, retry_policy

app = typer.Typer(help="Load user profiles (identified, anonymous, alias-only).", no_args_is_help=True)


@app.command("load")
def load_profiles(
    ctx: typer.Context,
    workspace: Annotated[str, typer.Argument(callback=check_workspace, help="workspace name")],
    file: Annotated[
        Path,
        typer.Argument(help="CSV or JSON Lines: external_id, device_id, alias_name, alias_label, identify_external_id"),
    ],
    concurrency: Concurrency = 4,
    max_attempts: MaxAttempts = 6,
    retry_base_delay: RetryBaseDelay = 0.5,
    report_wait: Annotated[float, typer.Option(
        help="seconds to wait for identity-resolution's reports of skipped entries (0: do not ask)")] = 30.0,
) -> None:
    """Send users/track, then users/alias/new, then users/identify, in batches of at most 500;
    then report the entries identity-resolution skipped (unknown users, aliases of others, …)."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        plan = read_profiles(file)
        phases = profile_requests(plan)
        started = time.monotonic()
        with progress_bar("profiles", sum(r.entries for phase in phases for r in phase)) as bar:
            counts, request_ids = asyncio.run(
                _send_phases(state, workspace, phases, concurrency, retry_policy(max_attempts, retry_base_delay), bar)
            )
        skipped, pending = asyncio.run(skipped_entries(state, workspace, request_ids, report_wait)) \
            if report_wait > 0 else ({}, request_ids)
    summary = {
        "rows": plan.rows,
        "track": len(plan.track),
        "aliases": len(plan.aliases),
        "identify": len(plan.identify),
        **counts,
        "seconds": round(time.monotonic() - started, 2),
        "skipped_by_reason": skipped,
        "not_yet_reported": pending,
    }
    if state.as_json:
        print_json(summary)
        return
    typer.echo(
        f"profiles: {plan.rows:,} rows -> {len(plan.track):,} tracked, {len(plan.aliases):,} aliases, "
        f"{len(plan.identify):,} identified; accepted {counts['accepted']:,}; {counts['requests']:,} requests, "
        f"{counts['retries']:,} retries; {summary['seconds']:.1f} s"
    )
    if skipped:
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(skipped.items()))
        typer.echo(f"skipped by identity-resolution: {reasons} (per request: cohort identities request)")
    if pending:
        typer.echo(f"{len(pending):,} requests not applied yet; check later: cohort identities request "
                   f"{workspace} {pending[0]}")


async def _send_phases(
    state: CliState,
    workspace: str,
    phases: list[list[ProfileRequest]],
    concurrency: int,
    policy: RetryPolicy,
    bar: ProgressBar,
) -> dict[str, int]:
    counts = {"accepted": 0, "requests": 0, "retries": 0}
    request_ids: list[str] = []
    async with state.async_client(state.ingest_url, admin=True) as client:

        async def send(request: ProfileRequest) -> None:
            url = f"/workspaces/{workspace}/{request.path}"
            sent = await send_with_retries(client, "POST", url, request.body, policy, state.hooks.sleep)
            counts["accepted"] += int(sent.body.get("accepted", 0))
            if sent.body.get("request_id"):
                request_ids.append(sent.body["request_id"])
            counts["requests"] += 1
            counts["retries"] += sent.retries
            bar.advance(request.entries)

        # Each phase is accepted whole before the next starts: aliases need their users,
        # and identify needs both (docs/producer-api.md applies a workspace's operations in order).
        for phase in phases:
            await run_bounded(phase, concurrency, send)
    return counts, request_ids


async def skipped_entries(state: CliState, workspace: str, request_ids: list[str],
                          wait_s: float) -> tuple[dict[str, int], list[str]]:
    """Skipped entries by reason over the requests' reports, and the requests not reported
    within `wait_s` (identity-resolution applies them asynchronously)."""
    skipped: dict[str, int] = {}
    pending = list(request_ids)
    deadline = time.monotonic() + wait_s
    async with state.async_client(state.identity_url, admin=True) as client:
        while pending and time.monotonic() < deadline:
            response = await client.get(f"/workspaces/{workspace}/identity-requests/{pending[0]}")
            if response.status_code == 404:
                await state.hooks.sleep(0.2)
                continue
            for reason, n in checked(response).get("skipped_by_reason", {}).items():
                skipped[reason] = skipped.get(reason, 0) + n
            pending.pop(0)
    return skipped, pending
