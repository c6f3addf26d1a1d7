"""REST API keys (docs/braze-rest.md): the Braze REST endpoints a key may call, and the body that
creates one. Keys themselves are made, stored and masked like data import keys
(`workspace_keys.py`, kind `REST_API_KEYS`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import InvalidRequest, describe_validation_error

Permission = Literal["users.track", "users.alias.new", "users.identify", "users.merge", "users.delete",
                     "users.export.ids"]
PERMISSIONS: tuple[str, ...] = Permission.__args__
"""Braze's names for the endpoints, `/users/alias/new` → `users.alias.new`."""


def permission_of(path: str) -> str:
    """The permission a Braze path needs: `/users/export/ids` → `users.export.ids`."""
    return path.strip("/").replace("/", ".")


class RestApiKeyBody(BaseModel):
    """Body of `POST /workspaces/{ws}/rest-api-keys`: a name, and the endpoints the key may call."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    permissions: list[Permission] = Field(min_length=1, max_length=len(PERMISSIONS))


def parse_rest_api_key_body(body: dict[str, Any]) -> RestApiKeyBody:
    try:
        return RestApiKeyBody.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


def sorted_permissions(permissions: list[str]) -> tuple[str, ...]:
    """Each permission once, in the order of `PERMISSIONS`."""
    return tuple(p for p in PERMISSIONS if p in permissions)


RATE_GROUPS: dict[str, str] = {
    "users.track": "users.track",
    "users.alias.new": "users.profiles",
    "users.identify": "users.profiles",
    "users.delete": "users.profiles",
    "users.merge": "users.profiles",
    "users.export.ids": "users.export.ids",
}
"""Which workspace budget each endpoint draws on: Braze shares one between /users/alias/new,
/users/identify, /users/merge and /users/delete (and /users/alias/update, not served here)."""
DEFAULT_RATE_LIMITS = "users.track=3000/3,users.profiles=20000/60,users.export.ids=2500/60"


def parse_rate_limits(raw: str) -> dict[str, tuple[int, int]]:
    """`users.track=3000/3,…` → {group: (requests, window seconds)}, defaults for groups not named."""
    limits: dict[str, tuple[int, int]] = {}
    for text in (DEFAULT_RATE_LIMITS, raw):
        for position, entry in enumerate(part.strip() for part in text.split(",")):
            if not entry:
                continue
            group, _, value = entry.partition("=")
            requests, _, seconds = value.partition("/")
            if group.strip() not in RATE_GROUPS.values() or not requests.strip().isdigit() or not seconds.strip().isdigit():
                raise ValueError(f"INGEST_REST_RATE_LIMITS entry {position + 1} must be <group>=<requests>/<seconds> "
                                 f"with a group of {', '.join(sorted(set(RATE_GROUPS.values())))}")
            if int(requests) < 1 or int(seconds) < 1:
                raise ValueError(f"INGEST_REST_RATE_LIMITS entry {position + 1} must allow at least 1 request in a window of at least 1 second")
            limits[group.strip()] = (int(requests), int(seconds))
    return limits
