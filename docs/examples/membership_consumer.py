"""Consuming `membership.changes` with faust-streaming, for teams that want Kafka rather
than webhooks. Run: `python docs/examples/membership_consumer.py worker -l warn`
(KAFKA_BOOTSTRAP_SERVERS, TOPIC_PREFIX and CONSUMER_GROUP from the environment).

Two things matter, both below: read committed (segment-store publishes in transactions;
faust reads uncommitted unless its exactly-once mode is on), and state that an event read
again cannot corrupt (faust is at least once; after a crash it reads from the last commit):
the latest change per cohort and user, in a table backed by a changelog topic, which ends
in the same state however often a stretch of events is read again.
"""

import json
import os

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        self.consumer.in_transaction = True  # the flag faust reads committed under
        try:
            return super()._create_worker_consumer(transport)
        finally:
            self.consumer.in_transaction = False


class ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self):
        return ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    Consumer = ReadCommittedConsumer


class App(faust.App):
    def _new_transport(self):
        return ReadCommittedTransport(self.conf.broker_consumer, self)


PREFIX = os.environ.get("TOPIC_PREFIX", "")
app = App(os.environ.get("CONSUMER_GROUP", "crm-sync"),
          broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')}",
          topic_partitions=int(os.environ.get("TOPIC_PARTITIONS", "12")),  # tables co-partitioned with the topic
          consumer_auto_offset_reset="earliest", topic_disable_leader=True, web_enabled=False)
changes = app.topic(f"{PREFIX}membership.changes", key_serializer="raw", value_serializer="raw")
membership = app.Table("membership", default=str)  # "<cohort_id>/<user_id>" -> "added" | "removed"


@app.agent(changes)
async def sync_memberships(stream):
    async for value in stream:
        event = json.loads(value)
        key = f"{event['cohort_id']}/{event['user_id']}"
        if membership[key] != event["change"]:  # an effective change for this consumer
            membership[key] = event["change"]
            print(f"{event['event_id']} {event['cohort_id']} {event['user_id']} {event['change']}")


if __name__ == "__main__":
    app.main()
