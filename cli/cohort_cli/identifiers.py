"""The identifiers a cohort export names, as plain values the producer can diff and batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

IdentifierKind = Literal["external_id", "device_id", "alias"]


@dataclass(frozen=True, order=True)
class Identifier:
    """One identifier of a cohort member: an external ID, a device ID or an alias (label + name)."""

    kind: IdentifierKind
    value: str
    label: str | None = None

    @classmethod
    def external_id(cls, value: str) -> Identifier:
        return cls("external_id", value)

    @classmethod
    def device_id(cls, value: str) -> Identifier:
        return cls("device_id", value)

    @classmethod
    def alias(cls, alias_name: str, alias_label: str) -> Identifier:
        return cls("alias", alias_name, alias_label)

    def to_json(self) -> list[str]:
        return [self.kind, self.value] if self.label is None else [self.kind, self.value, self.label]

    @classmethod
    def from_json(cls, value: list[str]) -> Identifier:
        kind, *rest = value
        if kind == "alias" and len(rest) == 2:
            return cls.alias(rest[0], rest[1])
        if kind in ("external_id", "device_id") and len(rest) == 1:
            return cls(kind, rest[0])
        raise ValueError(f"not an identifier: {value!r}")


@dataclass(frozen=True)
class Change:
    """One identifier to add to or remove from a cohort, with the export's optional timestamp."""

    identifier: Identifier
    should_remove: bool = False
    timestamp: datetime | None = None
