"""Committed offsets read without mistaking a coordinator's refusal for "nothing committed".

aiokafka asks for a group's committed offsets with OffsetFetch v2 or v3 and reads only the
per-partition errors of the answer. From v2 on, Kafka answers a group-level error — the
coordinator still loading the group's offsets after a broker restart
(COORDINATOR_LOAD_IN_PROGRESS), or no longer the coordinator (NOT_COORDINATOR) — in the
top-level error code, with no partitions at all (`OffsetFetchRequest.getErrorResponse`), and
aiokafka returned that as "no partition has a committed offset". The engine then saw Redis
ahead of a Kafka that had "lost" every offset of the task and held it back as a topic reset
(a chaos run: `membership.resolved[2]: Redis applied up to offset 50 but Kafka's committed
offset is None`, right after the broker restarted).

`install()` replaces the fetch with one that raises the top-level error, so aiokafka's own
loop (`fetch_committed_offsets`) waits and asks again, as it does for the per-partition ones.
Installed once, at import of `cohort_shared.kafka`.
"""

from __future__ import annotations

import collections
import logging

from aiokafka import errors as Errors
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.structs import OffsetAndMetadata, TopicPartition

log = logging.getLogger(__name__)
UNKNOWN_OFFSET = -1
AIOKAFKA_FETCH = GroupCoordinator._do_fetch_commit_offsets
"""aiokafka's own, kept for the test that shows why it is replaced (and fails once it is fixed)."""


def raise_group_error(coordinator, error_code: int) -> None:
    """The answer's top-level error, as aiokafka treats the same error of a partition."""
    error_type = Errors.for_code(error_code)
    if error_type is Errors.NoError:
        return
    if error_type is Errors.NotCoordinatorForGroupError:
        coordinator.coordinator_dead()  # find the coordinator again, then retry
    if error_type is Errors.GroupAuthorizationFailedError:
        raise error_type(coordinator.group_id)
    raise error_type()


async def fetch_committed(self: GroupCoordinator, partitions) -> dict[TopicPartition, OffsetAndMetadata]:
    by_topic = collections.defaultdict(list)
    for tp in partitions:
        by_topic[tp.topic].append(tp.partition)
    response = await self._send_req(OffsetFetchRequest(self.group_id, list(by_topic.items())))
    raise_group_error(self, getattr(response, "error_code", 0))
    offsets = {}
    for topic, topic_partitions in response.topics:
        for partition, offset, metadata, error_code in topic_partitions:
            if Errors.for_code(error_code) is Errors.UnknownTopicOrPartitionError:
                log.warning("OffsetFetchRequest -- unknown topic %s", topic)
                continue
            raise_group_error(self, error_code)
            if offset != UNKNOWN_OFFSET:
                offsets[TopicPartition(topic, partition)] = OffsetAndMetadata(offset, metadata)
    return offsets


def install() -> None:
    GroupCoordinator._do_fetch_commit_offsets = fetch_committed


__all__ = ["fetch_committed", "install", "raise_group_error"]
