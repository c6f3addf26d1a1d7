"""The faust agent: batches of `membership.changes` records, decoded, poison to the DLQ,
the rest queued for their webhooks. Nothing in it blocks the loop (Redis and Kafka calls are
awaited), and nothing it raises escapes: faust acknowledges a batch once the agent moves on,
so a failure is waited out inside (FanOut) rather than skipping the batch."""

from __future__ import annotations

import asyncio
import logging

from cohort_shared.faults import describe, is_infrastructure
from cohort_shared.stream.outgoing import describe_rejection
from cohort_shared.topics import dlq_name

from ..fanout import FanOut, is_poison
from ..metrics import DEAD_LETTERS

log = logging.getLogger(__name__)


def attach_agent(faust_app, topic_name: str, fanout: FanOut, *, batch_max: int, batch_within: float):
    topic = faust_app.topic(topic_name, key_serializer="raw", value_serializer="raw")

    async def on_membership_changes(stream):
        """Queue each batch of change events for the webhooks they match."""
        async for events in stream.take_events(batch_max, within=batch_within):
            decoded = []
            for event in events:
                try:
                    decoded.append(fanout.decode(event.value))
                except Exception as error:
                    if not is_poison(error):
                        raise
                    await dead_letter(faust_app, event, describe_rejection(error))
            if decoded:
                await fanout.queue_events(decoded)

    return faust_app.agent(topic, name="on_membership_changes")(on_membership_changes)


async def dead_letter(faust_app, event, reason: str) -> None:
    message = event.message
    headers = [("dlq.reason", reason.encode()[:4096]), ("dlq.source.topic", message.topic.encode()),
               ("dlq.source.partition", str(message.partition).encode()),
               ("dlq.source.offset", str(message.offset).encode()), ("dlq.service", b"delivery")]
    backoff = 0.1
    while True:
        try:
            await faust_app.producer.send_and_wait(dlq_name(message.topic), message.key, message.value, None, None,
                                                   headers)
            break
        except Exception as error:
            if not is_infrastructure(error):
                raise
            log.warning("cannot dead-letter yet: %s; retrying in %.1f s", describe(error), backoff)
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)
    DEAD_LETTERS.inc()
    log.warning("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
