"""Dead letters: the original record, and a reason that names fields, never values."""

from __future__ import annotations

import logging
from typing import NamedTuple

import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from ..topics import dlq_name

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
        parts = [f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {_without_input(error)}"
                 for error in exc.errors(include_input=False, include_url=False)[:10]]
        return f"schema validation failed: {'; '.join(parts)}"
    if isinstance(exc, orjson.JSONDecodeError):
        return "not valid JSON"
    return type(exc).__name__


def _without_input(error: dict) -> str:
    """pydantic's message, except where it quotes the record: an unknown type tag."""
    if error["type"] == "union_tag_invalid":
        return f"type tag is none of {error.get('ctx', {}).get('expected_tags', 'the known ones')}"
    return error["msg"]


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
