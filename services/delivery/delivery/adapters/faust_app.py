"""The faust-streaming app delivery runs inside its own process (no faust worker: uvicorn
owns the loop and starts the app in its lifespan).

faust reads with `read_uncommitted` unless its own exactly-once mode is on, which delivery
does not use (webhooks are at least once, `event_id` the idempotency key). The public topic
must be read committed, or an aborted transaction's events would be sent: the transport
below creates faust's consumer with `isolation_level="read_committed"` and changes nothing
else. Static membership (`consumer_group_instance_id` = INSTANCE_ID) keeps a restarted
instance's partitions, and so its webhooks, without a rebalance of the whole group.
"""

from __future__ import annotations

from pathlib import Path

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from ..settings import DeliverySettings


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = self.consumer
        in_transaction = consumer.in_transaction
        consumer.in_transaction = True  # the one condition under which faust reads committed
        try:
            return super()._create_worker_consumer(transport)
        finally:
            consumer.in_transaction = in_transaction


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = ReadCommittedConsumer


class DeliveryFaustApp(faust.App):
    def _new_transport(self):
        return ReadCommittedTransport(self.conf.broker_consumer, self)


def build_faust_app(settings: DeliverySettings) -> DeliveryFaustApp:
    brokers = ";".join(f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(","))
    session_s = settings.session_timeout_ms / 1000
    datadir = Path(settings.data_dir) / settings.instance
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    return DeliveryFaustApp(
        settings.group,
        broker=brokers,
        web_enabled=False,
        topic_disable_leader=True,  # no tables, no leader topic to create
        consumer_group_instance_id=settings.instance,
        consumer_auto_offset_reset="earliest",  # a new group misses nothing
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(1.0, session_s / 5),
        broker_request_timeout=max(40.0, session_s + 5),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        producer_acks=-1,
        stream_wait_empty=False,
        datadir=str(datadir),
        store="memory://",
    )
