"""`cohort webhooks`: signed webhooks for membership changes, on the delivery service."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import CliState, check_partner, check_workspace, path_part
from ..render import fields_table, print_json, reporting_errors, rows_table, show, stderr

app = typer.Typer(help="Create and operate a workspace's webhooks (delivery of membership changes).",
                  no_args_is_help=True)
Workspace = Annotated[str, typer.Argument(callback=check_workspace, help="workspace name")]
WebhookId = Annotated[str, typer.Argument(help="the webhook_id")]
STATE_COLUMNS = ["webhook_id", "status", "url", "delivered", "pending", "failed", "last_error"]


def _call(ctx: typer.Context, method: str, path: str, body: dict | None = None):
    state: CliState = ctx.obj
    with reporting_errors(state):
        return state, state.operator(state.delivery_url).request(method, path, json=body)


def _path(workspace: str, webhook_id: str = "", tail: str = "") -> str:
    path = f"/workspaces/{workspace}/webhooks"
    return f"{path}/{path_part(webhook_id)}{tail}" if webhook_id else path


def _partners(values: list[str] | None) -> list[str] | None:
    return [check_partner(v) for v in values] if values else None


@app.command("create")
def create_webhook(
    ctx: typer.Context, workspace: Workspace, url: Annotated[str, typer.Argument(help="http or https URL")],
    partner: Annotated[list[str] | None, typer.Option(help="only this partner's cohorts (repeatable)")] = None,
    cohort_id: Annotated[list[str] | None, typer.Option(help="only these cohorts (repeatable)")] = None,
    change: Annotated[list[str] | None, typer.Option(help="added or removed (repeatable)")] = None,
    description: Annotated[str | None, typer.Option(help="what it is for")] = None,
) -> None:
    """Create a webhook; its signing secret is shown this once."""
    flt = {k: v for k, v in {"partners": _partners(partner), "cohort_ids": cohort_id, "changes": change}.items() if v}
    body = {"url": url, **({"description": description} if description else {}), **({"filter": flt} if flt else {})}
    state, created = _call(ctx, "POST", _path(workspace), body)
    if state.as_json:
        print_json(created)
        return
    show(fields_table(f"New webhook for {workspace}", created))
    stderr().print("Keep the secret now: it is stored encrypted and shown again only by rotate-secret.")


@app.command("list")
def list_webhooks(ctx: typer.Context, workspace: Workspace) -> None:
    """List a workspace's webhooks with their delivery counts."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        found = state.operator(state.delivery_url).all_pages(_path(workspace), "webhooks")
    if state.as_json:
        print_json(found)
        return
    show(rows_table(f"Webhooks of {workspace}", STATE_COLUMNS, found.get("webhooks", [])))


@app.command("show")
def show_webhook(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId) -> None:
    """One webhook: filter, status, delivered, pending, failed, last error, latest replay."""
    state, found = _call(ctx, "GET", _path(workspace, webhook_id))
    print_json(found) if state.as_json else show(fields_table(f"Webhook {webhook_id}", found))


def _set_status(ctx: typer.Context, workspace: str, webhook_id: str, status: str) -> None:
    state, found = _call(ctx, "PATCH", _path(workspace, webhook_id), {"status": status})
    print_json(found) if state.as_json else typer.echo(f"webhook {webhook_id} of {workspace} is {found['status']}")


@app.command("pause")
def pause_webhook(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId) -> None:
    """Stop sending; events keep queueing and go out on resume."""
    _set_status(ctx, workspace, webhook_id, "paused")


@app.command("resume")
def resume_webhook(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId) -> None:
    """Send again, the backlog first."""
    _set_status(ctx, workspace, webhook_id, "active")


@app.command("rotate-secret")
def rotate_secret(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId) -> None:
    """A new signing secret, shown once; the old one keeps signing during the grace period."""
    state, rotated = _call(ctx, "POST", _path(workspace, webhook_id, "/rotate-secret"))
    print_json(rotated) if state.as_json else show(fields_table(f"New secret of {webhook_id}", rotated))


@app.command("attempts")
def list_attempts(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId,
                  limit: Annotated[int, typer.Option(min=1, max=1000, help="how many, newest first")] = 20) -> None:
    """The latest delivery attempts: answer or error, and what follows."""
    state, found = _call(ctx, "GET", _path(workspace, webhook_id, f"/attempts?limit={limit}"))
    if state.as_json:
        print_json(found)
        return
    columns = ["event_id", "attempt", "at", "status_code", "error", "duration_ms", "result"]
    show(rows_table(f"Attempts of {webhook_id}", columns, found.get("attempts", [])))


@app.command("replay")
def replay_webhook(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId,
                   since: Annotated[str, typer.Option("--from", help="ISO-8601 time with a time zone")]) -> None:
    """Send again every matching event since a time (progress: `cohort webhooks show`)."""
    state, started = _call(ctx, "POST", _path(workspace, webhook_id, "/replay"), {"from": since})
    print_json(started) if state.as_json else typer.echo(
        f"replay of {webhook_id} from {started['replay']['from']} {started['replay']['status']}")


@app.command("delete")
def delete_webhook(ctx: typer.Context, workspace: Workspace, webhook_id: WebhookId) -> None:
    """Delete a webhook, its queue and its history."""
    state, _ = _call(ctx, "DELETE", _path(workspace, webhook_id))
    print_json({"webhook_id": webhook_id, "deleted": True}) if state.as_json else typer.echo(
        f"webhook {webhook_id} of {workspace} deleted")
