"""KafkaPublisher's promises without a broker: bounded waits, order, and 'not connected'."""

import asyncio
import time

import pytest
from aiokafka.errors import KafkaTimeoutError
from cohort_shared.examples import EXAMPLES
from ingest.adapters.publisher import KafkaPublisher, PublishFailed

from .conftest import make_settings

RECEIPT, NAMED = EXAMPLES["cohort.meta"][1], EXAMPLES["cohort.meta"][0]


class StubProducer:
    """Stands in for AIOKafkaProducer: records sends, or hangs, or fails."""

    def __init__(self, behaviour: str = "ack") -> None:
        self.behaviour, self.sent = behaviour, []

    async def send_and_wait(self, topic, value, key=None):
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "fail":
            raise KafkaTimeoutError()
        self.sent.append((topic, key, value))


def publisher_with(producer) -> KafkaPublisher:
    publisher = KafkaPublisher(make_settings(), timeout_seconds=0.2)
    publisher._producer = producer  # as if connected
    return publisher


async def test_messages_go_out_in_order_with_their_own_keys():
    producer = StubProducer()
    await publisher_with(producer).publish(("t.meta", RECEIPT), ("t.meta", NAMED))
    assert producer.sent == [("t.meta", RECEIPT.kafka_key(), RECEIPT.to_bytes()), ("t.meta", NAMED.kafka_key(), NAMED.to_bytes())]


@pytest.mark.parametrize("behaviour", ["hang", "fail"])
async def test_a_broker_that_does_not_ack_is_a_failure_within_the_timeout(behaviour):
    started = time.monotonic()
    with pytest.raises(PublishFailed):
        await publisher_with(StubProducer(behaviour)).publish(("t", RECEIPT))
    assert time.monotonic() - started < 1


async def test_before_connecting_every_publish_fails_at_once_and_it_is_not_ready():
    publisher = KafkaPublisher(make_settings(), timeout_seconds=5)
    with pytest.raises(PublishFailed):
        await publisher.publish(("t", RECEIPT))
    assert not await publisher.ready()
