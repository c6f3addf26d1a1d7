"""Identifiers as the harness names them: what a producer or operator sends, and the
`user_ref` the operator APIs take for it (docs/matching.md)."""

from __future__ import annotations

from dataclasses import dataclass

ALIAS_LABEL = "email"


@dataclass(frozen=True, order=True)
class Ident:
    """An external ID, an alias (always labelled `email` here) or a device ID."""

    kind: str  # external_id | alias | device_id
    value: str

    @property
    def ref(self) -> str:
        """The `user_ref` of this identifier in the operator APIs."""
        if self.kind == "alias":
            return f"alias:{ALIAS_LABEL}:{self.value}"
        return f"{self.kind}:{self.value}"

    def as_operator_identifier(self) -> dict:
        """The identifier object of `/users/merge` (docs/producer-api.md)."""
        if self.kind == "alias":
            return {"user_alias": {"alias_name": self.value, "alias_label": ALIAS_LABEL}}
        return {self.kind: self.value}


def external(value: str) -> Ident:
    return Ident("external_id", value)


def alias(value: str) -> Ident:
    return Ident("alias", value)


def device(value: str) -> Ident:
    return Ident("device_id", value)


def cohort_entry(idents: list[Ident], remove: bool) -> dict:
    """One `cohort_changes` entry of the producer API holding `idents`."""
    entry: dict = {"user_ids": [], "device_ids": [], "aliases": []}
    for ident in idents:
        if ident.kind == "external_id":
            entry["user_ids"].append(ident.value)
        elif ident.kind == "device_id":
            entry["device_ids"].append(ident.value)
        else:
            entry["aliases"].append({"alias_name": ident.value, "alias_label": ALIAS_LABEL})
    entry = {k: v for k, v in entry.items() if v}
    if remove:
        entry["should_remove"] = True
    return entry
