"""Reading CSV and JSON Lines files into rows with their line numbers, for clear errors.

Both the cohort export and the profiles file go through here; what a row must contain is
decided by their own modules (`exports`, `profiles`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MAX_VALUE_LENGTH = 512  # ingest refuses longer identifiers (docs/api/ingest.openapi.json)


class InputFileError(ValueError):
    """A file the CLI cannot use, with the file, line and column that are wrong."""

    def __init__(self, path: Path, problem: str, line: int | None = None, column: str | None = None) -> None:
        where = str(path) if line is None else f"{path}, line {line}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.column, self.problem = path, line, column, problem


@dataclass(frozen=True)
class Row:
    """One row of the file: its line number and its non-empty values, stripped."""

    path: Path
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str | None:
        value = self.values.get(column)
        if value is not None and len(value) > MAX_VALUE_LENGTH:
            raise self.error(column, f"longer than {MAX_VALUE_LENGTH} characters")
        return value

    def error(self, column: str | None, problem: str) -> InputFileError:
        return InputFileError(self.path, problem, self.line, column)

    def timestamp(self, column: str) -> datetime | None:
        """An ISO-8601 time; one without a zone is taken as UTC."""
        text = self.get(column)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.error(column, f"{text!r} is not an ISO-8601 time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_rows(path: Path, columns: frozenset[str]) -> Iterator[Row]:
    """Rows of a CSV (with a header) or JSON Lines file; columns outside `columns` are ignored."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    if _is_csv(path):
        yield from _csv_rows(path, columns)
    else:
        yield from _json_lines_rows(path, columns)


def _is_csv(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return True
    if suffix in (".jsonl", ".ndjson", ".json"):
        return False
    with path.open(encoding="utf-8-sig") as file:
        for line in file:
            if line.strip():
                return not line.lstrip().startswith("{")
    return True


def _csv_rows(path: Path, columns: frozenset[str]) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        if not columns & set(header):
            raise InputFileError(path, f"the header names none of the columns {', '.join(sorted(columns))}", 1)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                raise InputFileError(
                    path, f"{len(cells)} values but the header has {len(header)} columns", reader.line_num
                )
            values = {
                name: cell.strip()
                for name, cell in zip(header, cells, strict=False)
                if name in columns and cell.strip()
            }
            yield Row(path, reader.line_num, values)


def _json_lines_rows(path: Path, columns: frozenset[str]) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputFileError(path, f"not valid JSON ({error.msg})", number) from None
            if not isinstance(document, dict):
                raise InputFileError(path, "each line must be a JSON object", number)
            values: dict[str, str] = {}
            for name in columns & document.keys():
                value = document[name]
                if value is None or value == "":
                    continue
                if isinstance(value, bool) or not isinstance(value, str | int):
                    raise InputFileError(path, "must be a string", number, name)
                values[name] = str(value).strip()
            yield Row(path, number, values)
