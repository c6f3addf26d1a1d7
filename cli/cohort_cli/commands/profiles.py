"""`cohort profiles load`: create the users a cohort import can match (SPEC §2 profile API)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from ..backoff import RetryPolicy
from ..context import CliState, check_workspace
from ..http_client import run_bounded, send_with_retries
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
) -> None:
    """Send users/track, then users/alias/new, then users/identify, in batches of at most 500."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        plan = read_profiles(file)
        phases = profile_requests(plan)
        started = time.monotonic()
        with progress_bar("profiles", sum(r.entries for phase in phases for r in phase)) as bar:
            counts = asyncio.run(
                _send_phases(state, workspace, phases, concurrency, retry_policy(max_attempts, retry_base_delay), bar)
            )
    summary = {
        "rows": plan.rows,
        "track": len(plan.track),
        "aliases": len(plan.aliases),
        "identify": len(plan.identify),
        **counts,
        "seconds": round(time.monotonic() - started, 2),
    }
    if state.as_json:
        print_json(summary)
    else:
        typer.echo(
            f"profiles: {plan.rows:,} rows -> {len(plan.track):,} tracked, {len(plan.aliases):,} aliases, "
            f"{len(plan.identify):,} identified; accepted {counts['accepted']:,}; {counts['requests']:,} requests, "
            f"{counts['retries']:,} retries; {summary['seconds']:.1f} s"
        )


async def _send_phases(
    state: CliState,
    workspace: str,
    phases: list[list[ProfileRequest]],
    concurrency: int,
    policy: RetryPolicy,
    bar: ProgressBar,
) -> dict[str, int]:
    counts = {"accepted": 0, "requests": 0, "retries": 0}
    async with state.async_client(state.ingest_url, admin=True) as client:

        async def send(request: ProfileRequest) -> None:
            url = f"/workspaces/{workspace}/{request.path}"
            sent = await send_with_retries(client, "POST", url, request.body, policy, state.hooks.sleep)
            counts["accepted"] += int(sent.body.get("accepted", 0))
            counts["requests"] += 1
            counts["retries"] += sent.retries
            bar.advance(request.entries)

        # Each phase is accepted whole before the next starts: aliases need their users,
        # and identify needs both (SPEC §2 applies a workspace's operations in order).
        for phase in phases:
            await run_bounded(phase, concurrency, send)
    return counts
