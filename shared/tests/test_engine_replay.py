"""A batch found applied before (its Kafka commit never happened) is published from its
outbox; the engine then commits only what Redis tracked and reads the rest again. An input
that joined the batch since must not have its first offset committed: the next owner would
find Kafka ahead of Redis and hold the task back (the fault CI's cluster crash test met)."""

from aiokafka import TopicPartition
from cohort_shared.settings import CommonSettings
from cohort_shared.stream.engine import StreamProcessor
from cohort_shared.stream.service import InputTopic, StreamService

RESOLVED = TopicPartition("membership.resolved", 1)
MERGES = TopicPartition("identity.merges", 1)


class Consumer:
    def __init__(self, assigned) -> None:
        self.assigned, self.seeks = set(assigned), {}

    def assignment(self):
        return self.assigned

    def seek(self, tp, offset) -> None:
        self.seeks[tp] = offset


class Commit:
    def __init__(self, tracked, outputs) -> None:
        self.tracked, self.outputs = tracked, outputs

    async def replayed(self, keys):
        return dict(self.tracked), list(self.outputs)


def processor(tracked) -> StreamProcessor:
    service = StreamService(name="segment-store", inputs=[InputTopic("membership.resolved"),
                                                          InputTopic("identity.merges")],
                            handlers=[], decode=lambda base, record: None)
    proc = StreamProcessor(CommonSettings(), None, service, group_id="segment-store")
    proc.consumer = Consumer({RESOLVED, MERGES})
    proc.commit = Commit(tracked, [("membership.changes", None, b"k", b"v")])
    return proc


async def test_an_input_that_joined_the_batch_keeps_its_committed_offset():
    proc = processor({"membership.resolved": 12})
    offsets = {RESOLVED: 13, MERGES: 4}  # as the batch left them: its last offsets + 1
    outputs = await proc._replayed(1, {RESOLVED: (5, 12), MERGES: (0, 3)}, offsets)
    assert outputs == [("membership.changes", None, b"k", b"v")]
    assert offsets == {RESOLVED: 13}
    assert proc.consumer.seeks == {RESOLVED: 13, MERGES: 0}


async def test_records_past_what_was_applied_are_read_again():
    proc = processor({"membership.resolved": 8, "identity.merges": 2})
    offsets = {RESOLVED: 13, MERGES: 5}
    await proc._replayed(1, {RESOLVED: (5, 12), MERGES: (3, 4)}, offsets)
    assert offsets == {RESOLVED: 9}
    assert proc.consumer.seeks == {RESOLVED: 9, MERGES: 3}
