"""`user_ref` (docs/matching.md): an internal user ID, `external_id:…`, `alias:<label>:<name>` or `device_id:…`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import Invalid

RefKind = Literal["user_id", "external_id", "alias", "device_id"]


@dataclass(frozen=True)
class UserRef:
    kind: RefKind
    value: str
    label: str | None = None

    def index_key(self) -> str:
        """The profile index's field for this identifier (adapters/layout.py)."""
        if self.kind == "external_id":
            return f"x\x1f{self.value}"
        if self.kind == "alias":
            return f"a\x1f{self.label}\x1f{self.value}"
        if self.kind == "device_id":
            return f"d\x1f{self.value}"
        raise ValueError("an internal user ID is not an index key")


def parse_user_ref(raw: str) -> UserRef:
    kind, sep, rest = raw.partition(":")
    if sep and kind in ("external_id", "device_id"):
        if not rest:
            raise Invalid(f"user_ref {kind}: needs a value")
        return UserRef(kind, rest)
    if sep and kind == "alias":
        label, sep2, name = rest.partition(":")
        if not sep2 or not label or not name:
            raise Invalid("user_ref alias: must be alias:<label>:<name>")
        return UserRef("alias", name, label)
    if not raw or len(raw) > 64:
        raise Invalid("user_ref must be a user ID, external_id:…, alias:<label>:<name> or device_id:…")
    return UserRef("user_id", raw)
