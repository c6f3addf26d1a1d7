"""`cohort keys`: the data import key lifecycle on ingest (docs/producer-api.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import CliState, check_workspace, path_part
from ..render import fields_table, print_json, reporting_errors, rows_table, show, stderr

app = typer.Typer(help="Create, list and invalidate a workspace's data import keys.", no_args_is_help=True)
Workspace = Annotated[str, typer.Argument(callback=check_workspace, help="workspace name")]


@app.command("create")
def create_key(ctx: typer.Context, workspace: Workspace) -> None:
    """Create a data import key; it is shown in clear this once."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        created = state.operator(state.ingest_url).request("POST", f"/workspaces/{workspace}/data-import-keys")
    if state.as_json:
        print_json(created)
        return
    show(fields_table(f"New data import key for {workspace}", created))
    stderr().print("Keep the key now: it is stored only as a hash and cannot be shown again.")


@app.command("list")
def list_keys(ctx: typer.Context, workspace: Workspace) -> None:
    """List a workspace's keys (masked) with when each was created and last used."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        keys = state.operator(state.ingest_url).all_pages(f"/workspaces/{workspace}/data-import-keys", "keys")
    if state.as_json:
        print_json(keys)
        return
    columns = ["key_id", "masked", "created_at", "last_used_at"]
    show(rows_table(f"Data import keys of {workspace}", columns, keys.get("keys", [])))


@app.command("invalidate")
def invalidate_key(
    ctx: typer.Context, workspace: Workspace, key_id: Annotated[str, typer.Argument(help="the key_id to invalidate")]
) -> None:
    """Invalidate a key: it stops working at once."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        state.operator(state.ingest_url).request(
            "DELETE", f"/workspaces/{workspace}/data-import-keys/{path_part(key_id)}"
        )
    if state.as_json:
        print_json({"key_id": key_id, "invalidated": True})
    else:
        typer.echo(f"key {key_id} of {workspace} invalidated")
