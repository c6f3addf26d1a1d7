"""Records to publish, dead letters, and decoding what a tracked script returned."""

from __future__ import annotations

import logging
from typing import NamedTuple

import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from ..topics import Topics, dlq_name

log = logging.getLogger(__name__)


class Outgoing(NamedTuple):
    """A record to publish: full topic name, key, value (None is a tombstone), headers."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


def describe_rejection(exc: Exception) -> str:
    """Why a record was refused, naming fields and rules but never the values in it (a DLQ
    reason must not copy personal data out of the record)."""
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
                 for error in exc.errors(include_input=False, include_url=False, include_context=False)[:10]]
        return f"schema validation failed: {'; '.join(parts)}"
    if isinstance(exc, orjson.JSONDecodeError):
        return "not valid JSON"
    return type(exc).__name__


def dead_letter(record: ConsumerRecord, reason: str, service: str) -> Outgoing:
    """The DLQ record for `record`: its original key and bytes, the reason in headers."""
    headers = [
        ("dlq.reason", reason.encode()[:4096]),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.service", service.encode()),
    ]
    log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
    return Outgoing(dlq_name(record.topic), record.key, record.value, headers)


def decode_outputs(raw: bytes | str, topics: Topics) -> list[Outgoing]:
    """Turn what a tracked script returned into records to publish."""
    items = orjson.loads(raw)
    if isinstance(items, dict):  # cjson encodes an empty table as {}
        return []
    out = []
    for item in items:
        value = item.get("value")
        if item.get("tombstone"):
            encoded = None
        elif isinstance(value, str):
            encoded = value.encode()
        else:
            encoded = orjson.dumps(value)
        key = item.get("key")
        out.append(Outgoing(topics.name(item["topic"]), key.encode() if key is not None else None, encoded))
    return out
