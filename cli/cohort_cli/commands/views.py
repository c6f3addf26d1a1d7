"""Read-only views and segment definition: cohorts, segments, a user's cohorts, identities."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ..context import CliState, check_workspace, path_part
from ..render import fail, fields_table, print_json, reporting_errors, rows_table, show

Workspace = Annotated[str, typer.Argument(callback=check_workspace, help="workspace name")]
UserRef = Annotated[
    str, typer.Argument(help="internal user ID, external_id:<id>, alias:<label>:<name> or device_id:<id>")
]

cohorts = typer.Typer(help="Cohorts and their sync reports (segment-store).", no_args_is_help=True)
segments = typer.Typer(help="Define and inspect segments (segment-store).", no_args_is_help=True)
users = typer.Typer(help="A user's cohort memberships (segment-store).", no_args_is_help=True)
identities = typer.Typer(help="What identity-resolution knows of a profile.", no_args_is_help=True)


def _get(state: CliState, base_url: str, path: str) -> Any:
    with reporting_errors(state):
        return state.operator(base_url).request("GET", path)


@cohorts.command("list")
def list_cohorts(ctx: typer.Context, workspace: Workspace) -> None:
    """Every cohort of the workspace with its member count."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        found = state.operator(state.segment_url).all_pages(f"/workspaces/{workspace}/cohorts", "cohorts")
    if state.as_json:
        return print_json(found)
    columns = ["partner", "cohort_id", "name", "member_count", "updated_at"]
    show(rows_table(f"Cohorts of {workspace}", columns, found.get("cohorts", [])))


@cohorts.command("show")
def show_cohort(ctx: typer.Context, workspace: Workspace, cohort_id: str) -> None:
    """One cohort and its sync report (cumulative identifier counts)."""
    state: CliState = ctx.obj
    cohort = _get(state, state.segment_url, f"/workspaces/{workspace}/cohorts/{path_part(cohort_id)}")
    if state.as_json:
        return print_json(cohort)
    report = dict(cohort.pop("sync_report", None) or {})
    unmatched, dropped = report.pop("unmatched", None) or {}, report.pop("dropped", None) or {}
    rows = {**report, **{f"unmatched: {reason}": n for reason, n in sorted(unmatched.items())}}
    rows.update({f"dropped: {reason}": n for reason, n in sorted(dropped.items())})
    show(fields_table(f"Cohort {cohort_id}", cohort), fields_table("Sync report", rows))


@segments.command("list")
def list_segments(ctx: typer.Context, workspace: Workspace) -> None:
    """Every segment of the workspace (sizes with `segments show`)."""
    state: CliState = ctx.obj
    with reporting_errors(state):
        found = state.operator(state.segment_url).all_pages(f"/workspaces/{workspace}/segments", "segments")
    if state.as_json:
        return print_json(found)
    rows = [{**item, "filter": json.dumps(item["filter"])} for item in found.get("segments", [])]
    show(rows_table(f"Segments of {workspace}", ["segment_id", "name", "filter"], rows))


@segments.command("create")
def create_segment(
    ctx: typer.Context,
    workspace: Workspace,
    name: str,
    filter_json: Annotated[str, typer.Option("--filter", help='e.g. {"Mixpanel_Cohorts": {"includes": ["mp_12345"]}}')],
) -> None:
    """Define a segment from a filter over partners' cohorts."""
    state: CliState = ctx.obj
    try:
        segment_filter = json.loads(filter_json)
    except json.JSONDecodeError as error:
        fail(f"--filter is not valid JSON: {error.msg} at character {error.pos}", state, 2)
    with reporting_errors(state):
        created = state.operator(state.segment_url).request(
            "POST", f"/workspaces/{workspace}/segments", {"name": name, "filter": segment_filter}
        )
    if state.as_json:
        return print_json(created)
    show(fields_table("New segment", created))


@segments.command("show")
def show_segment(ctx: typer.Context, workspace: Workspace, segment_id: str) -> None:
    """A segment's definition and current size."""
    state: CliState = ctx.obj
    segment = _get(state, state.segment_url, f"/workspaces/{workspace}/segments/{path_part(segment_id)}")
    if state.as_json:
        return print_json(segment)
    show(fields_table(f"Segment {segment_id}", segment))


@users.command("cohorts")
def user_cohorts(ctx: typer.Context, workspace: Workspace, user_ref: UserRef) -> None:
    """The cohorts a user is a member of."""
    state: CliState = ctx.obj
    found = _get(state, state.segment_url, f"/workspaces/{workspace}/users/{path_part(user_ref)}/cohorts")
    if state.as_json:
        return print_json(found)
    title = f"Cohorts of user {found.get('user_id')} ({user_ref})"
    show(rows_table(title, ["partner", "cohort_id", "name"], found.get("cohorts", [])))


@identities.command("show")
def show_identity(ctx: typer.Context, workspace: Workspace, user_ref: UserRef) -> None:
    """A profile's external ID, aliases, devices and attributes as identity-resolution knows them."""
    state: CliState = ctx.obj
    profile = _get(state, state.identity_url, f"/workspaces/{workspace}/identities/{path_part(user_ref)}")
    if state.as_json:
        return print_json(profile)
    aliases = [f"{a.get('alias_label')}:{a.get('alias_name')}" for a in profile.get("aliases", [])]
    attributes = profile.pop("custom_attributes", None) or {}
    fields = {
        **profile,
        "aliases": ", ".join(aliases) or None,
        "device_ids": ", ".join(profile.get("device_ids", [])) or None,
        **{f"attribute: {name}": json.dumps(value, ensure_ascii=False) for name, value in sorted(attributes.items())},
    }
    show(fields_table(f"Profile {user_ref}", fields))


@identities.command("request")
def show_identity_request(
    ctx: typer.Context, workspace: Workspace,
    request_id: Annotated[str, typer.Argument(help="the request_id a profile API call answered with")],
) -> None:
    """What became of one profile identity request: its entries and the ones skipped, and why."""
    state: CliState = ctx.obj
    report = _get(state, state.identity_url, f"/workspaces/{workspace}/identity-requests/{path_part(request_id)}")
    if state.as_json:
        return print_json(report)
    summary = {k: report.get(k) for k in ("request_id", "type", "entries", "skipped", "applied_at")}
    skipped = [{"entry": e["index"], "reason": e["reason"]} for e in report.get("skipped_entries", [])]
    show(fields_table(f"Identity request {request_id}", summary),
         rows_table("Skipped entries", ["entry", "reason"], skipped))


@identities.command("report")
def show_identity_report(ctx: typer.Context, workspace: Workspace) -> None:
    """Profile identity entries skipped in the workspace, ever, by reason."""
    state: CliState = ctx.obj
    report = _get(state, state.identity_url, f"/workspaces/{workspace}/identity-report")
    if state.as_json:
        return print_json(report)
    show(fields_table(f"Skipped identity entries of {workspace}", report.get("skipped_by_reason") or {"none": 0}))
