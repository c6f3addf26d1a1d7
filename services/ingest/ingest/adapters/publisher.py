"""Publishing to Kafka behind a small adapter, so the HTTP app runs the same against the
real broker (`KafkaPublisher`) and in memory (`InMemoryPublisher`, for unit tests).

`publish` returns only once Kafka acknowledged every message (acks=all, idempotent
producer) and raises `PublishFailed` within a bounded time otherwise. The service starts
without Kafka: it connects in the background, is not ready until then, and answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from cohort_shared.kafka import ensure_topics, make_producer, probe_kafka
from cohort_shared.schemas import Message
from cohort_shared.settings import CommonSettings

log = logging.getLogger(__name__)

Outgoing = tuple[str, Message]  # (topic, message)


class PublishFailed(Exception):
    """Kafka did not acknowledge in time: nothing may be assumed written."""


class Publisher(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool: ...
    async def publish(self, *messages: Outgoing) -> None: ...


class KafkaPublisher:
    """Wraps one aiokafka producer; sends a request's messages in order, each acked before the next."""

    def __init__(self, settings: CommonSettings, timeout_seconds: float, reconnect_seconds: float = 2.0) -> None:
        self._settings = settings
        self._timeout = timeout_seconds
        self._reconnect = reconnect_seconds
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task | None = None

    async def start(self) -> None:
        """Try once now; if Kafka is not there, keep trying in the background."""
        if not await self._connect_once():
            self._connecting = asyncio.create_task(self._connect_until_up(), name="kafka-connect")

    async def _connect_until_up(self) -> None:
        connected = False
        while not connected:
            await asyncio.sleep(self._reconnect)  # a retry delay, not a wait for a result
            connected = await self._connect_once()

    async def _connect_once(self) -> bool:
        producer = make_producer(self._settings, request_timeout_ms=int(self._timeout * 1000))
        try:
            await asyncio.wait_for(ensure_topics(self._settings, self._settings.topics.all()), self._timeout)
            await asyncio.wait_for(producer.start(), self._timeout)
        except Exception as error:  # noqa: BLE001 - whatever it was, retry; never die silently
            log.warning("Kafka not reachable at %s yet (%s); retrying", self._settings.kafka_bootstrap_servers,
                        type(error).__name__)
            await producer.stop()
            return False
        self._producer = producer
        log.info("connected to Kafka at %s", self._settings.kafka_bootstrap_servers)
        return True

    async def stop(self) -> None:
        if self._connecting:
            self._connecting.cancel()
        if self._producer:
            await self._producer.stop()

    async def ready(self) -> bool:
        return self._producer is not None and await probe_kafka(self._producer)

    async def publish(self, *messages: Outgoing) -> None:
        if self._producer is None:
            raise PublishFailed("not connected to Kafka")
        try:
            await asyncio.wait_for(self._send_in_order(self._producer, messages), self._timeout)
        except (TimeoutError, KafkaError) as error:
            raise PublishFailed(type(error).__name__) from error

    @staticmethod
    async def _send_in_order(producer: AIOKafkaProducer, messages: tuple[Outgoing, ...]) -> None:
        # Each ack before the next send: the receipt is durable before the changes it counts.
        for topic, message in messages:
            await producer.send_and_wait(topic, message.to_bytes(), key=message.kafka_key())


class InMemoryPublisher:
    """Keeps what was published; `failing = True` makes it refuse like an unreachable broker."""

    def __init__(self) -> None:
        self.published: list[Outgoing] = []
        self.failing = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def ready(self) -> bool:
        return not self.failing

    async def publish(self, *messages: Outgoing) -> None:
        if self.failing:
            raise PublishFailed("in-memory broker set to fail")
        self.published.extend(messages)

    def on(self, topic: str) -> list[Message]:
        return [message for name, message in self.published if name == topic]
