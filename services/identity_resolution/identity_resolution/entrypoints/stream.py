"""The stream entrypoint: decode each record, apply it with the Lua script, publish what the
script returned. Delivery is transactional (`cohort_shared.stream`): effects are applied once
per record in Redis, outputs published with the consumed offsets in one Kafka transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from cohort_shared.schemas import decode, utc_now
from cohort_shared.stream.outgoing import Outgoing, dead_letter, decode_outputs, describe_rejection
from cohort_shared.stream.processor import BatchHandler
from cohort_shared.stream.tracking import Tracking
from cohort_shared.topics import COHORT_CHANGES, IDENTITY_EVENTS
from prometheus_client import Counter, Gauge

from ..adapters.identity_script import IdentityScript
from ..domain.effects import TALLY_TOPIC, Clock, Tally
from ..settings import IdentitySettings

SERVICE = "identity-resolution"
log = logging.getLogger(__name__)

RESOLVED = Counter("identity_resolved_total", "Cohort changes matched to a profile when they arrived")
UNMATCHED = Counter("identity_unmatched_total", "Cohort changes no profile matched", ["reason"])
PARKED = Counter("identity_parked_total", "Unmatched cohort changes parked until their identity appears")
DRAINED = Counter("identity_drained_total", "Parked cohort changes applied once their identity appeared")
SKIPPED = Counter("identity_entries_skipped_total", "Profile identity entries skipped", ["reason"])
PARKED_NOW = Gauge("identity_parked_changes", "Changes parked, waiting for their identity", ["workspace"])


def make_handler(settings: IdentitySettings, client: aioredis.Redis, script: IdentityScript) -> BatchHandler:
    """The batch handler of both input topics."""
    topics = settings.topics
    base_topics = {topics.cohort_changes: COHORT_CHANGES, topics.identity_events: IDENTITY_EVENTS}
    tally_topic = topics.name(TALLY_TOPIC)

    async def on_records(tp: TopicPartition, records: list[ConsumerRecord], tracking: Tracking) -> list[Outgoing]:
        """Apply one partition's batch: one script call per record, all in one round trip."""
        await script.ensure_loaded()
        base_topic = base_topics[tp.topic]
        clock = Clock(utc_now(), settings.park_window_seconds, settings.max_parked_per_workspace)
        pipe = client.pipeline(transaction=False)
        plan: list[Outgoing | tuple[ConsumerRecord, str]] = []  # a DLQ record, or (record, workspace) queued
        for record in records:
            try:
                message = decode(base_topic, record.value)
            except Exception as exc:  # noqa: BLE001 - undecodable or schema-invalid: poison
                plan.append(dead_letter(record, f"invalid {base_topic} record: {describe_rejection(exc)}", SERVICE))
                continue
            script.queue(pipe, tracking.for_record(record, message.workspace_id), record.offset, base_topic, message, clock)
            plan.append((record, message.workspace_id))
        results = iter(await pipe.execute() if len(pipe) else [])
        out: list[Outgoing] = []
        for item in plan:
            if isinstance(item, Outgoing):
                out.append(item)
                continue
            record, workspace_id = item
            for outgoing in decode_outputs(next(results), topics):
                if outgoing.topic == tally_topic:
                    _count(Tally.from_json(orjson.loads(outgoing.value or b"{}")), record, workspace_id)
                else:
                    out.append(outgoing)
        return out

    return on_records


def _count(tally: Tally, record: ConsumerRecord, workspace_id: str) -> None:
    # A replayed record hands back its stored tally, so these can count a record twice
    # after a crash; the published messages never are.
    if tally.parked_now >= 0:
        PARKED_NOW.labels(workspace_id).set(tally.parked_now)
    RESOLVED.inc(tally.resolved)
    DRAINED.inc(tally.drained)
    PARKED.inc(tally.parked)
    for reason, n in tally.unmatched.items():
        UNMATCHED.labels(reason).inc(n)
    for reason, n in tally.skipped.items():
        SKIPPED.labels(reason).inc(n)
    if tally.skipped:
        log.info("%s[%d]@%d: skipped entries %s", record.topic, record.partition, record.offset, _plain(tally.skipped))


def _plain(counts: dict) -> str:
    return ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))


def input_topics(settings: IdentitySettings) -> Sequence[str]:
    return [settings.topics.identity_events, settings.topics.cohort_changes]
