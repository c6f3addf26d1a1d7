"""Output: rich tables on stdout, errors on stderr with every secret scrubbed, or plain JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .context import CliState
from .http_client import ApiError
from .producer.snapshots import SnapshotError
from .records import InputFileError


def stdout() -> Console:
    # Made per call so the console follows sys.stdout (the test runner swaps it).
    return Console(highlight=False, soft_wrap=False, emoji=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Mask every secret in `text`; ones too short to be real keys would mask ordinary words."""
    for secret in secrets:
        if len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


def fail(message: str, state: CliState | None = None, code: int = 1) -> NoReturn:
    stderr().print(f"[bold red]error:[/] {escape(scrub(message, state.secrets if state else []))}")
    raise typer.Exit(code)


@contextmanager
def reporting_errors(state: CliState) -> Iterator[None]:
    """Turn the errors a user can act on into one clear line and a non-zero exit."""
    try:
        yield
    except ApiError as error:
        fail(str(error), state, 1)
    except (InputFileError, SnapshotError) as error:
        fail(str(error), state, 2)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | dict):
        return escape(json.dumps(value, separators=(", ", ": ")))
    return escape(str(value))


def fields_table(title: str, fields: Mapping[str, Any]) -> Table:
    table = Table(title=escape(title), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for name, value in fields.items():
        table.add_row(name, cell(value))
    return table


def rows_table(title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title=escape(title), title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column.endswith(("count", "size")) else "left")
    for row in rows:
        table.add_row(*(cell(row.get(column)) for column in columns))
    return table


def show(*tables: Table) -> None:
    console = stdout()
    for table in tables:
        console.print(table)
