"""Braze REST bodies (docs/braze-rest.md) as the profile identity API's bodies: the same
entries, the same identity.events messages, the same rules downstream — one implementation
behind two routes.

What differs is Braze's way with a bad object: it is reported in `errors`
(`{"type", "input_array", "index"}`) while the valid objects are applied; only a request
with nothing valid in it is a 400. A request over an array's limit is refused whole.
Unknown top-level fields are ignored, as Braze does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cohort_shared import schemas as s
from pydantic import TypeAdapter, ValidationError

from .errors import InvalidRequest, describe_validation_error
from .fields import IdentifierString, parse_iso_time
from .identity_requests import AliasNewBody, DeleteBody, IdentifyBody, IdentityBody, MergeBody, TrackBody

MAX_TRACK_OBJECTS = 75
MAX_OBJECTS = 50
MAX_ATTRIBUTE_BYTES = 4096
TRACK_ARRAYS = ("attributes", "events", "purchases")
USER_NAMED_BY = ("external_id", "user_alias", "braze_id")
NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."


class ObjectInvalid(ValueError):
    """One object of a Braze array is invalid; the message is Braze's error `type`."""


@dataclass(frozen=True)
class ObjectError:
    type: str
    input_array: str
    index: int

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "input_array": self.input_array, "index": self.index}


@dataclass(frozen=True)
class BrazeRequest:
    """What a Braze body becomes: the profile identity body of its valid objects, the counts
    Braze answers with, and the objects reported in `errors`."""

    body: IdentityBody
    counts: dict[str, int]
    errors: list[ObjectError] = field(default_factory=list)


def _array(body: dict[str, Any], name: str, limit: int) -> list[Any]:
    value = body.get(name)
    if value is None:
        return []
    if isinstance(value, dict):  # braze-client documents a single object as accepted
        return [value]
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be an array of objects")
    if len(value) > limit:
        raise InvalidRequest(f"{name} must hold at most {limit} objects")
    return value


def _validated(adapter: TypeAdapter, item: Any) -> Any:
    try:
        return adapter.validate_python(item)
    except ValidationError as error:
        raise ObjectInvalid(describe_validation_error(error)) from None


def _split(items: list[Any], array: str, parse: Callable[[Any], Any]) -> tuple[list[Any], list[ObjectError]]:
    valid, errors = [], []
    for index, item in enumerate(items):
        try:
            valid.append(parse(item))
        except ObjectInvalid as error:
            errors.append(ObjectError(str(error), array, index))
    return valid, errors


def _nothing_valid(message: str, errors: list[ObjectError]) -> InvalidRequest:
    return InvalidRequest(message, details={"errors": [e.as_json() for e in errors]} if errors else None)


# ---------------------------------------------------------------- /users/track

TRACKED = TypeAdapter(s.TrackedUser)


def _tracked_user(item: Any, with_attributes: bool) -> s.TrackedUser:
    if not isinstance(item, dict):
        raise ObjectInvalid("must be an object")
    named = [name for name in USER_NAMED_BY if item.get(name) is not None]
    if len(named) != 1:
        raise ObjectInvalid("exactly one of 'external_id', 'user_alias' or 'braze_id' is required")
    # Braze: "when using a user_alias, Update Only defaults to true"; an alias-only user is
    # created only when the object says `"_update_existing_only": false`.
    update_existing_only = item.get("_update_existing_only", named[0] == "user_alias")
    if not isinstance(update_existing_only, bool):
        raise ObjectInvalid("'_update_existing_only' must be true or false")
    attributes = custom_attributes(item) if with_attributes else {}
    return _validated(TRACKED, {named[0]: item[named[0]], "update_existing_only": update_existing_only,
                                "custom_attributes": attributes})


def custom_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """Every field of an attributes object that is not an identifier or a flag."""
    attributes = {name: value for name, value in item.items()
                  if name not in USER_NAMED_BY and name != "_update_existing_only"}
    for name, value in attributes.items():
        if not 1 <= len(name) <= 255:
            raise ObjectInvalid("attribute names must be 1 to 255 characters")
        if len(orjson.dumps(value)) > MAX_ATTRIBUTE_BYTES:
            raise ObjectInvalid(f"attribute '{name[:64]}' must be at most {MAX_ATTRIBUTE_BYTES} bytes of JSON")
    return attributes


def _required_text(item: dict[str, Any], name: str) -> None:
    if not isinstance(item.get(name), str) or not item[name].strip():
        raise ObjectInvalid(f"'{name}' is required and must be a non-empty string")


def _checked_time_and_properties(item: dict[str, Any]) -> None:
    try:
        parse_iso_time(item.get("time"))
    except ValueError:
        raise ObjectInvalid("'time' is required and must be a valid time as an ISO-8601 string") from None
    if "properties" in item and not isinstance(item["properties"], dict):
        raise ObjectInvalid("'properties' must be an object")


def _event(item: Any) -> s.TrackedUser:
    user = _tracked_user(item, with_attributes=False)
    _required_text(item, "name")
    _checked_time_and_properties(item)
    return user


def _purchase(item: Any) -> s.TrackedUser:
    user = _tracked_user(item, with_attributes=False)
    _required_text(item, "product_id")
    currency = item.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ObjectInvalid("'currency' is required and must be a three-letter ISO 4217 code")
    price = item.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float):
        raise ObjectInvalid("'price' is required and must be a number")
    quantity = item.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100:
        raise ObjectInvalid("'quantity' must be an integer from 1 to 100")
    _checked_time_and_properties(item)
    return user


def parse_track(body: dict[str, Any]) -> BrazeRequest:
    """`attributes`, `events`, `purchases` (at most 75 objects each): each object's user
    created or touched (events and purchases are counted, not stored), attributes kept."""
    parsers = {"attributes": lambda item: _tracked_user(item, with_attributes=True), "events": _event,
               "purchases": _purchase}
    arrays = {name: _array(body, name, MAX_TRACK_OBJECTS) for name in TRACK_ARRAYS}
    users, errors, counts = [], [], {}
    for name, items in arrays.items():
        valid, invalid = _split(items, name, parsers[name])
        users += valid
        errors += invalid
        counts[f"{name}_processed"] = len(valid)
    if not users:
        raise _nothing_valid(NOTHING_VALID, errors)
    return BrazeRequest(TrackBody(attributes=users), counts, errors)


# ---------------------------------------------------------------- alias, identify, merge, delete

NEW_ALIAS = TypeAdapter(s.NewAlias)
ALIAS_TO_IDENTIFY = TypeAdapter(s.AliasToIdentify)
DEVICE_TO_IDENTIFY = TypeAdapter(s.DeviceToIdentify)
MERGE_UPDATE = TypeAdapter(s.MergeUpdate)
ALIAS = TypeAdapter(s.Alias)
IDENTIFIER = TypeAdapter(IdentifierString)
BRAZE_ID = TypeAdapter(s.UserId)


def _entries(body: dict[str, Any], fields: dict[str, TypeAdapter]) -> tuple[dict[str, list], list[ObjectError]]:
    lists, errors = {}, []
    for name, adapter in fields.items():
        lists[name], invalid = _split(_array(body, name, MAX_OBJECTS), name, lambda item, a=adapter: _validated(a, item))
        errors += invalid
    return lists, errors


def _merge_update(item: Any) -> s.MergeUpdate:
    update = _validated(MERGE_UPDATE, item)
    if update.identifier_to_merge == update.identifier_to_keep:
        raise ObjectInvalid("identifier_to_merge and identifier_to_keep must name two different profiles")
    return update


def parse_alias_new(body: dict[str, Any]) -> BrazeRequest:
    lists, errors = _entries(body, {"user_aliases": NEW_ALIAS})
    if not lists["user_aliases"]:
        raise _nothing_valid("user_aliases must hold at least one valid alias object", errors)
    return BrazeRequest(AliasNewBody(**lists), {"aliases_processed": len(lists["user_aliases"])}, errors)


def parse_identify(body: dict[str, Any]) -> BrazeRequest:
    lists, errors = _entries(body, {"aliases_to_identify": ALIAS_TO_IDENTIFY, "devices_to_identify": DEVICE_TO_IDENTIFY})
    count = sum(len(v) for v in lists.values())
    if not count:
        raise _nothing_valid("aliases_to_identify must hold at least one valid object", errors)
    return BrazeRequest(IdentifyBody(**lists), {"aliases_processed": count}, errors)


def parse_merge(body: dict[str, Any]) -> BrazeRequest:
    updates, errors = _split(_array(body, "merge_updates", MAX_OBJECTS), "merge_updates", _merge_update)
    if not updates:
        raise _nothing_valid("merge_updates must hold at least one valid merge object", errors)
    return BrazeRequest(MergeBody(merge_updates=updates), {}, errors)


def parse_delete(body: dict[str, Any]) -> BrazeRequest:
    lists, errors = _entries(body, {"external_ids": IDENTIFIER, "user_aliases": ALIAS, "braze_ids": BRAZE_ID})
    count = sum(len(v) for v in lists.values())
    if not count:
        raise _nothing_valid("at least one valid identifier is required in external_ids, user_aliases or braze_ids",
                             errors)
    return BrazeRequest(DeleteBody(**lists), {"deleted": count}, errors)
