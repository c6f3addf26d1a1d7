"""A cohort export (Mixpanel-style CSV or JSON Lines) read into the identifiers of its members."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .identifiers import Identifier
from .records import InputFileError, Row, read_rows

EXPORT_COLUMNS = frozenset({"user_id", "device_id", "alias_name", "alias_label", "timestamp"})


def read_cohort_export(path: Path) -> dict[Identifier, datetime | None]:
    """Every identifier the export names, in file order, with the row's optional timestamp.

    A person may carry several identifiers (user_id, device_id, an alias); each counts on
    its own, as in the producer API. An identifier named twice is kept once (first row wins).
    """
    members: dict[Identifier, datetime | None] = {}
    for row in read_rows(path, EXPORT_COLUMNS):
        timestamp = row.timestamp("timestamp")
        for identifier in identifiers_of_row(row):
            members.setdefault(identifier, timestamp)
    return members


def identifiers_of_row(row: Row) -> list[Identifier]:
    found: list[Identifier] = []
    if user_id := row.get("user_id"):
        found.append(Identifier.external_id(user_id))
    if device_id := row.get("device_id"):
        found.append(Identifier.device_id(device_id))
    if alias := alias_of_row(row):
        found.append(alias)
    if not found:
        raise row.error(None, "no identifier: give user_id, device_id, or alias_name with alias_label")
    return found


def alias_of_row(row: Row) -> Identifier | None:
    """The row's alias; half an alias (a name without a label or the reverse) is an error."""
    name, label = row.get("alias_name"), row.get("alias_label")
    if name and not label:
        raise row.error("alias_label", "missing: alias_name is given, so alias_label is required")
    if label and not name:
        raise row.error("alias_name", "missing: alias_label is given, so alias_name is required")
    return Identifier.alias(name, label) if name and label else None


__all__ = ["EXPORT_COLUMNS", "InputFileError", "read_cohort_export"]
