"""The AsyncAPI 3.0 document of every topic: channels from the topic constants
(`cohort_shared.topics`), messages and payloads from the pydantic schemas
(`cohort_shared.schemas.TOPIC_SCHEMAS`), examples and their keys from
`cohort_shared.examples`. What the schemas cannot say (who produces and consumes a topic,
what its key is) is stated once here, in `ROUTES`."""

from __future__ import annotations

from typing import Any, NamedTuple

from cohort_shared import examples, schemas, topics
from cohort_shared.settings import CommonSettings

REF = "#/components/schemas/{model}"


class Route(NamedTuple):
    producer: str
    consumers: tuple[str, ...]
    key: str  # what the key is, and so whose order it keeps


ROUTES: dict[str, Route] = {
    topics.COHORT_CHANGES: Route("ingest", ("identity-resolution",), "workspace + partner + cohort_id (one cohort's changes stay in order)"),
    topics.COHORT_META: Route("ingest", ("segment-store",), "workspace + partner + cohort_id"),
    topics.IDENTITY_EVENTS: Route("ingest", ("identity-resolution",), "workspace (a workspace's profile operations stay in order)"),
    topics.IDENTITY_FORWARDED: Route("identity-resolution", ("identity-resolution",),
                                     "workspace + partner + cohort_id (internal: changes handed to the partition that owns an identity)"),
    topics.MEMBERSHIP_RESOLVED: Route("identity-resolution", ("segment-store",), "internal user ID"),
    topics.MEMBERSHIP_UNMATCHED: Route("identity-resolution", ("segment-store",), "workspace + partner + cohort_id"),
    topics.IDENTITY_MERGES: Route("identity-resolution", ("segment-store",),
                                  "the user whose memberships move: the merged or deleted profile, or the kept one for its announcement"),
    topics.IDENTITY_PROFILES: Route("identity-resolution", ("segment-store", "ingest (export view)"),
                                    "internal user ID (compacted: the latest value per user; a tombstone, a null value, means deleted)"),
    topics.SEGMENT_HANDOVERS: Route("segment-store", ("segment-store",),
                                    "a user ID: the profile whose memberships are handed between partitions on a merge (internal)"),
    topics.MEMBERSHIP_CHANGES: Route("segment-store", ("delivery", "downstream consumers"), "internal user ID (a user's events stay in order)"),
}
KEY_SEPARATOR = "\\u001f"  # between the parts of a composite key (cohort_shared.schemas.cohort_key)


def _channel_id(topic: str) -> str:
    head, *rest = topic.replace("-", ".").split(".")
    return head + "".join(part.capitalize() for part in rest)


def _operation_id(service: str, action: str, topic: str) -> str:
    return _channel_id(f"{service}.{action}.{topic}")


def _messages_of(topic: str, components: dict[str, Any]) -> list[str]:
    """The models a topic carries, their schemas added to `components`."""
    schema = schemas.TOPIC_SCHEMAS[topic].json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    if "oneOf" in schema:
        return [option["$ref"].rsplit("/", 1)[1] for option in schema["oneOf"]]
    components[schema["title"]] = schema
    return [schema["title"]]


def _example(message: schemas.Message) -> dict[str, Any]:
    key = message.kafka_key().decode().replace("\x1f", KEY_SEPARATOR)
    return {"name": type(message).__name__, "summary": f"Kafka key: {key}", "payload": message.model_dump(mode="json")}


def asyncapi_document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    partitions = CommonSettings.model_fields["topic_partitions"].default
    for topic in topics.ALL_TOPICS:
        route = ROUTES[topic]
        channel = _channel_id(topic)
        names = _messages_of(topic, components)
        for name in names:
            found = [_example(m) for m in examples.EXAMPLES.get(topic, []) if type(m).__name__ == name]
            messages[name] = {
                "name": name, "title": name, "contentType": "application/json",
                "summary": (components[name].get("description") or name).split("\n")[0],
                "payload": {"$ref": REF.format(model=name)},
                "bindings": {"kafka": {"key": {"type": "string", "description": route.key}}},
                **({"examples": found} if found else {}),
            }
        compacted = topic in topics.COMPACTED_TOPICS
        channels[channel] = {
            "address": topic,
            "title": topic,
            "description": f"Key: {route.key}. Produced by {route.producer}; consumed by {', '.join(route.consumers)}. "
                           f"Every topic name is prefixed by TOPIC_PREFIX.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {"partitions": partitions,
                                   "topicConfiguration": {"cleanup.policy": ["compact" if compacted else "delete"]}}},
        }
        refs = [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]
        operations[_operation_id(route.producer, "sends", topic)] = {
            "action": "send", "channel": {"$ref": f"#/channels/{channel}"}, "messages": refs,
            "summary": f"{route.producer} publishes to {topic}",
        }
        for consumer in route.consumers:
            operations[_operation_id(consumer, "receives", topic)] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{channel}"}, "messages": refs,
                "summary": f"{consumer} consumes {topic}",
            }
    channels["deadLetters"] = {
        "address": topics.dlq_name("{topic}"),
        "title": topics.dlq_name("<topic>"),
        "description": "A record its consumer could not decode: the original key and bytes, the reason in headers. "
                       "The reason names fields and rules, never values from the record.",
        "parameters": {"topic": {"enum": list(topics.ALL_TOPICS), "description": "the topic the record was read from"}},
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter", "title": "DeadLetter", "contentType": "application/octet-stream",
        "summary": "The original record, as it was read",
        "payload": {"description": "the original bytes, unchanged"},
        "headers": {"type": "object", "properties": {
            "dlq.reason": {"type": "string", "description": "why it was refused (at most 4,096 bytes)"},
            "dlq.source.topic": {"type": "string"}, "dlq.source.partition": {"type": "string"},
            "dlq.source.offset": {"type": "string"}, "dlq.service": {"type": "string", "description": "the consumer that refused it"},
        }},
        "bindings": {"kafka": {"key": {"description": "the original record's key"}}},
    }
    operations["anyConsumerSendsDeadLetters"] = {
        "action": "send", "channel": {"$ref": "#/channels/deadLetters"},
        "summary": "a consumer dead-letters a record it cannot decode, and moves on",
        "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Cohort Import topics", "version": "1.0.0",
            "description": "Every Kafka topic of Cohort Import. membership.changes is the public event "
                           "(docs/events.md); the others are internal between the three services. "
                           "Generated by `python -m tools.contract write` from cohort_shared.schemas and "
                           "cohort_shared.topics; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                              "description": "KAFKA_BOOTSTRAP_SERVERS; the local stack's default"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(components.items()))},
    }
