"""`cohort keys` and `cohort rest-keys`: the lifecycle of a workspace's keys on ingest —
data import keys and REST API keys for the Braze REST API (docs/braze-rest.md), one set of
commands for both."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import CliState, check_workspace, path_part
from ..render import fields_table, print_json, reporting_errors, rows_table, show, stderr

Workspace = Annotated[str, typer.Argument(callback=check_workspace, help="workspace name")]
KeyId = Annotated[str, typer.Argument(help="the key_id to invalidate")]
PERMISSIONS = ("users.track", "users.alias.new", "users.identify", "users.merge", "users.delete", "users.export.ids")

app = typer.Typer(help="Create, list and invalidate a workspace's data import keys.", no_args_is_help=True)
rest_app = typer.Typer(help="Create, list and invalidate a workspace's REST API keys (Braze REST API).",
                       no_args_is_help=True)


def _create(state: CliState, workspace: str, kind: str, title: str, body: dict | None = None) -> None:
    with reporting_errors(state):
        created = state.operator(state.ingest_url).request("POST", f"/workspaces/{workspace}/{kind}", body)
    if state.as_json:
        print_json(created)
        return
    show(fields_table(f"New {title} for {workspace}", created))
    stderr().print("Keep the key now: it is stored only as a hash and cannot be shown again.")


def _list(state: CliState, workspace: str, kind: str, title: str, columns: list[str]) -> None:
    with reporting_errors(state):
        keys = state.operator(state.ingest_url).all_pages(f"/workspaces/{workspace}/{kind}", "keys")
    if state.as_json:
        print_json(keys)
        return
    rows = [{**k, "permissions": " ".join(k["permissions"])} if "permissions" in k else k for k in keys.get("keys", [])]
    show(rows_table(f"{title} of {workspace}", columns, rows))


def _invalidate(state: CliState, workspace: str, kind: str, key_id: str) -> None:
    with reporting_errors(state):
        state.operator(state.ingest_url).request("DELETE", f"/workspaces/{workspace}/{kind}/{path_part(key_id)}")
    if state.as_json:
        print_json({"key_id": key_id, "invalidated": True})
    else:
        typer.echo(f"key {key_id} of {workspace} invalidated")


@app.command("create")
def create_key(ctx: typer.Context, workspace: Workspace) -> None:
    """Create a data import key; it is shown in clear this once."""
    _create(ctx.obj, workspace, "data-import-keys", "data import key")


@app.command("list")
def list_keys(ctx: typer.Context, workspace: Workspace) -> None:
    """List a workspace's keys (masked) with when each was created and last used."""
    _list(ctx.obj, workspace, "data-import-keys", "Data import keys", ["key_id", "masked", "created_at", "last_used_at"])


@app.command("invalidate")
def invalidate_key(ctx: typer.Context, workspace: Workspace, key_id: KeyId) -> None:
    """Invalidate a key: it stops working at once."""
    _invalidate(ctx.obj, workspace, "data-import-keys", key_id)


@rest_app.command("create")
def create_rest_key(
    ctx: typer.Context, workspace: Workspace,
    name: Annotated[str, typer.Option("--name", help="what the key is for")],
    permission: Annotated[list[str] | None, typer.Option(
        "--permission", help=f"an endpoint the key may call (repeat it); default: all of {', '.join(PERMISSIONS)}")] = None,
) -> None:
    """Create a REST API key, with the base URL to give a Braze client; shown in clear this once."""
    body = {"name": name, "permissions": list(permission or PERMISSIONS)}
    _create(ctx.obj, workspace, "rest-api-keys", "REST API key", body)


@rest_app.command("list")
def list_rest_keys(ctx: typer.Context, workspace: Workspace) -> None:
    """List a workspace's REST API keys (masked) with their permissions and last use."""
    _list(ctx.obj, workspace, "rest-api-keys", "REST API keys",
          ["key_id", "name", "masked", "permissions", "created_at", "last_used_at"])


@rest_app.command("invalidate")
def invalidate_rest_key(ctx: typer.Context, workspace: Workspace, key_id: KeyId) -> None:
    """Invalidate a REST API key: it is refused from the next request on."""
    _invalidate(ctx.obj, workspace, "rest-api-keys", key_id)
