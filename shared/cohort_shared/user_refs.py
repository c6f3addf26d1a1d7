"""How an operator names a profile in a path (docs/matching.md): an internal user ID, `external_id:…`,
`alias:<label>:<name>` or `device_id:…`. One parser for every service that takes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RefKind = Literal["user_id", "external_id", "alias", "device_id"]
MAX_USER_ID_LENGTH = 64


@dataclass(frozen=True)
class UserRef:
    """A parsed `user_ref`: its kind, the value, and the alias label for aliases."""

    kind: RefKind
    value: str
    label: str | None = None


def parse_user_ref(text: str) -> UserRef:
    """Parse a `user_ref`; raises ValueError with a message naming what is wrong.

    Only the first colon after `alias:` separates label from name, so a name may hold
    colons and a label may not."""
    prefix, sep, rest = text.partition(":")
    if sep and prefix in ("external_id", "device_id"):
        if not rest:
            raise ValueError(f"user_ref {prefix}: needs a value")
        return UserRef(prefix, rest)
    if sep and prefix == "alias":
        label, sep, name = rest.partition(":")
        if not sep or not label or not name:
            raise ValueError("user_ref alias: must be alias:<alias_label>:<alias_name>")
        return UserRef("alias", name, label)
    if not text or len(text) > MAX_USER_ID_LENGTH:
        raise ValueError("user_ref must be a user ID, external_id:…, alias:<label>:<name> or device_id:…")
    return UserRef("user_id", text)
