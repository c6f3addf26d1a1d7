"""`cohort repair`: Kafka/Redis divergences the stream services found, and their repair
(SPEC §6; README "Recovering from a detected divergence")."""

from __future__ import annotations

from typing import Annotated

import typer

from ..context import CliState
from ..render import print_json, reporting_errors, rows_table, show

app = typer.Typer(help="See and repair partitions whose Kafka and Redis positions disagree.", no_args_is_help=True)
SERVICES = ("identity-resolution", "segment-store", "ingest")
"""The stream processors: the two stream services, and ingest's export view."""


def _url(state: CliState, service: str) -> str:
    return {"identity-resolution": state.identity_url, "segment-store": state.segment_url}.get(service, state.ingest_url)


@app.command("list")
def list_divergences(ctx: typer.Context) -> None:
    """Every partition held back because Kafka and Redis disagree, in every stream processor."""
    state: CliState = ctx.obj
    found = []
    with reporting_errors(state):
        for service in SERVICES:
            answer = state.operator(_url(state, service)).request("GET", "/admin/divergences")
            found += [{"service": service, **d} for d in answer.get("divergences", [])]
    if state.as_json:
        return print_json({"divergences": found})
    columns = ["service", "topic", "partition", "kind", "redis_applied", "kafka_committed", "detected_at"]
    show(rows_table("Divergences", columns, found))
    for item in found:
        typer.echo(f"{item['service']} {item['topic']}[{item['partition']}]: {item['description']}")


@app.command("apply")
def apply_repair(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="identity-resolution, segment-store or ingest (its export view)")],
    topic: Annotated[str, typer.Argument(help="the full topic name, as `repair list` shows it")],
    partition: Annotated[int, typer.Argument(min=0)],
    action: Annotated[str, typer.Option(help="reapply: read again from Redis's position (Redis lost writes); "
                                             "accept: take Kafka's position (topic recreated, offsets reset)")],
) -> None:
    """Ask the partition's owner to repair it; it resumes within a second or two."""
    state: CliState = ctx.obj
    if service not in SERVICES:
        raise typer.BadParameter(f"service must be one of {', '.join(SERVICES)}")
    if action not in ("reapply", "accept"):
        raise typer.BadParameter("action must be reapply or accept")
    with reporting_errors(state):
        answer = state.operator(_url(state, service)).request(
            "POST", "/admin/divergences/repair", {"topic": topic, "partition": partition, "action": action})
    if state.as_json:
        return print_json(answer)
    typer.echo(f"{action} of {topic}[{partition}] requested from {service}")
