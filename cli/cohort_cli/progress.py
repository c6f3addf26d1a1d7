"""A rich progress bar over identifiers (or entries) sent, on stderr so stdout stays for results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .render import stderr


@dataclass
class ProgressBar:
    progress: Progress
    task: TaskID

    def plan(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, done: int) -> None:
        self.progress.advance(self.task, done)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[ProgressBar]:
    console = stderr()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # A pipe or log file gets the summary line only, not a bar's left-overs.
        disable=not console.is_terminal,
    )
    with progress:
        yield ProgressBar(progress, progress.add_task(description, total=total))
