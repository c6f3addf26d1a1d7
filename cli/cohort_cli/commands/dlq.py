"""`cohort dlq`: dead letters — list them, inspect one, replay them after a fix
(docs/operations.md#dead-letters; README "Replaying dead letters"). Reads Kafka directly:
KAFKA_BOOTSTRAP_SERVERS and TOPIC_PREFIX apply."""

from __future__ import annotations

import asyncio
import base64
import collections
from typing import Annotated

import typer
from cohort_shared.settings import CommonSettings

from ..context import CliState
from ..dead_letters import dlq_topics, read_dead_letter, read_dead_letters, replay_dead_letters, still_invalid
from ..render import fail, print_json, rows_table, show

app = typer.Typer(help="Dead letters: records a consumer could not decode, kept in <topic>.dlq.", no_args_is_help=True)
TopicOption = Annotated[str | None, typer.Option("--topic", help="only the DLQ of this topic (default name, e.g. cohort.changes)")]


def _topics(settings: CommonSettings, topic: str | None, state: CliState) -> list[str]:
    try:
        return dlq_topics(settings, topic)
    except ValueError as error:
        fail(str(error), state, 2)


@app.command("list")
def list_dead_letters(ctx: typer.Context, topic: TopicOption = None) -> None:
    """Every dead letter still kept, with its origin and the reason it was refused."""
    state: CliState = ctx.obj
    settings = CommonSettings()
    letters = asyncio.run(read_dead_letters(settings, _topics(settings, topic, state)))
    rows = [letter.summary() for letter in letters]
    if state.as_json:
        return print_json({"dead_letters": rows})
    show(rows_table("Dead letters", ["topic", "partition", "offset", "source", "service", "reason", "bytes"], rows))
    counts = collections.Counter(letter.topic for letter in letters)
    typer.echo(", ".join(f"{name}: {n:,}" for name, n in sorted(counts.items())) or "no dead letters")


@app.command("inspect")
def inspect_dead_letter(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="the DLQ topic, as `dlq list` shows it")],
    partition: Annotated[int, typer.Argument(min=0)],
    offset: Annotated[int, typer.Argument(min=0)],
) -> None:
    """One dead letter: its headers, key and original bytes (as text where they are UTF-8,
    else base64), and whether today's schemas would read it."""
    state: CliState = ctx.obj
    settings = CommonSettings()
    letter = asyncio.run(read_dead_letter(settings, topic, partition, offset))
    if letter is None:
        fail(f"no dead letter at {topic}[{partition}]@{offset}", state, 1)
    problem = still_invalid(settings, letter)
    body = {**letter.summary(), "headers": letter.headers, "key": _text(letter.key), "value": _text(letter.value),
            "decodes_now": problem is None, "problem_now": problem}
    if state.as_json:
        return print_json(body)
    for name in ("topic", "partition", "offset", "source", "service", "reason", "decodes_now", "problem_now"):
        typer.echo(f"{name:12} {body[name]}")
    typer.echo(f"{'key':12} {body['key']}")
    typer.echo(f"{'value':12} {body['value']}")


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


@app.command("replay")
def replay(
    ctx: typer.Context,
    topic: TopicOption = None,
    skip_invalid: Annotated[bool, typer.Option(help="step over records that still do not decode (they stay in the DLQ)")] = False,
    dry_run: Annotated[bool, typer.Option(help="say what would be replayed, send nothing")] = False,
) -> None:
    """Send dead letters back to the topic they came from, in order, each exactly once, once
    a fix lets their consumer read them. A record that still does not decode stops its
    partition's replay (unless --skip-invalid); run it again after the next fix."""
    state: CliState = ctx.obj
    settings = CommonSettings()
    outcome = asyncio.run(replay_dead_letters(settings, _topics(settings, topic, state),
                                              skip_invalid=skip_invalid, dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    if state.as_json:
        print_json({verb.replace(" ", "_"): [d.summary() for d in outcome.replayed],
                    "skipped": [{**d.summary(), "problem_now": p} for d, p in outcome.skipped],
                    "blocked": [{**d.summary(), "problem_now": p} for d, p in outcome.blocked]})
    else:
        typer.echo(f"{verb} {len(outcome.replayed):,}; skipped {len(outcome.skipped):,} still invalid")
        for letter, problem in outcome.blocked:
            typer.echo(f"stopped at {letter.where}: still does not decode ({problem}); "
                       "fix and replay again, or --skip-invalid")
    if outcome.blocked:
        raise typer.Exit(1)
