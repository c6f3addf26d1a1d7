"""`cohort`: the operator CLI. Global options say where the services are and carry the token."""

from __future__ import annotations

from typing import Annotated

import typer

from .commands import keys, profiles, repair, views, webhooks
from .commands.sync import sync_command
from .commands.tail import tail_command
from .context import ClientHooks, CliState

app = typer.Typer(
    name="cohort",
    help="Operate Cohort Import: data import keys, profiles, cohort syncs, segments, webhooks and the change stream.",
    no_args_is_help=True,
    add_completion=False,
    # Locals would include the tokens; never print them, even on a crash.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    ingest_url: Annotated[str, typer.Option(envvar="COHORT_INGEST_URL", help="ingest service")] = (
        "http://127.0.0.1:8080"
    ),
    identity_url: Annotated[str, typer.Option(envvar="COHORT_IDENTITY_URL", help="identity-resolution service")] = (
        "http://127.0.0.1:8081"
    ),
    segment_url: Annotated[str, typer.Option(envvar="COHORT_SEGMENT_URL", help="segment-store service")] = (
        "http://127.0.0.1:8082"
    ),
    delivery_url: Annotated[str, typer.Option(envvar="COHORT_DELIVERY_URL", help="delivery service (webhooks)")] = (
        "http://127.0.0.1:8083"
    ),
    admin_token: Annotated[
        str | None, typer.Option(envvar="ADMIN_TOKEN", show_default=False, help="operator token (never printed)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the answers as JSON instead of tables")] = False,
) -> None:
    # Tests hand in ClientHooks (a mock transport, a sleep that does not wait) as `obj`.
    hooks = ctx.obj if isinstance(ctx.obj, ClientHooks) else ClientHooks()
    ctx.obj = CliState(
        ingest_url=ingest_url.rstrip("/"),
        identity_url=identity_url.rstrip("/"),
        segment_url=segment_url.rstrip("/"),
        delivery_url=delivery_url.rstrip("/"),
        admin_token=admin_token or None,
        as_json=json_output,
        hooks=hooks,
    )


app.add_typer(keys.app, name="keys")
app.add_typer(keys.rest_app, name="rest-keys")
app.add_typer(profiles.app, name="profiles")
app.add_typer(views.cohorts, name="cohorts")
app.add_typer(views.segments, name="segments")
app.add_typer(views.users, name="users")
app.add_typer(views.identities, name="identities")
app.add_typer(repair.app, name="repair")
app.add_typer(webhooks.app, name="webhooks")
app.command("sync")(sync_command)
app.command("tail")(tail_command)
