"""Committed offsets: an OffsetFetch answer's group-level error is an error to retry, never
"nothing committed" (offset_fetch.py). Kafka's own answer shapes, built with aiokafka's
response classes; aiokafka's retry loop run as it is."""

from __future__ import annotations

import pytest
from aiokafka import errors as Errors
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.commit import OffsetFetchResponse_v3
from aiokafka.structs import TopicPartition
from cohort_shared import kafka  # noqa: F401 - installs the fetch
from cohort_shared.offset_fetch import AIOKAFKA_FETCH, fetch_committed

TPS = [TopicPartition("t.membership.resolved", 2), TopicPartition("t.identity.merges", 2)]


def answer(error_code: int = 0, offsets: dict | None = None) -> OffsetFetchResponse_v3:
    """What the broker sends: a group-level error comes with no partitions at all."""
    topics: dict[str, list] = {}
    for tp, offset in (offsets or {}).items():
        topics.setdefault(tp.topic, []).append((tp.partition, offset, "", 0))
    return OffsetFetchResponse_v3(0, list(topics.items()), error_code)


class Coordinator:
    """The parts of aiokafka's GroupCoordinator the fetch and its retry loop use."""

    group_id = "g"
    _retry_backoff_ms = 1
    _do_fetch_commit_offsets = fetch_committed

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.dead = 0

    async def _send_req(self, request):
        return self.answers.pop(0)

    def coordinator_dead(self) -> None:
        self.dead += 1

    async def ensure_coordinator_known(self) -> None:
        pass


def test_the_fetch_is_installed():
    assert GroupCoordinator._do_fetch_commit_offsets is fetch_committed


async def test_aiokafka_alone_reads_a_loading_coordinator_as_nothing_committed():
    """Why the fetch is replaced; once aiokafka reads the top-level error, this fails and the
    replacement can go."""
    assert await AIOKAFKA_FETCH(Coordinator(answer(Errors.GroupLoadInProgressError.errno)), TPS) == {}


async def test_a_coordinator_loading_its_offsets_is_asked_again_not_read_as_nothing_committed():
    coordinator = Coordinator(answer(Errors.GroupLoadInProgressError.errno), answer(offsets={TPS[0]: 51, TPS[1]: 19}))
    offsets = await GroupCoordinator.fetch_committed_offsets(coordinator, TPS)
    assert {tp: meta.offset for tp, meta in offsets.items()} == {TPS[0]: 51, TPS[1]: 19}
    assert coordinator.answers == []


async def test_a_moved_coordinator_is_found_again_then_asked_again():
    coordinator = Coordinator(answer(Errors.NotCoordinatorForGroupError.errno), answer(offsets={TPS[0]: 7, TPS[1]: -1}))
    offsets = await GroupCoordinator.fetch_committed_offsets(coordinator, TPS)
    assert {tp: meta.offset for tp, meta in offsets.items()} == {TPS[0]: 7}  # -1: nothing committed there
    assert coordinator.dead == 1


async def test_an_error_that_will_not_pass_is_raised():
    with pytest.raises(Errors.GroupAuthorizationFailedError):
        await GroupCoordinator.fetch_committed_offsets(Coordinator(answer(Errors.GroupAuthorizationFailedError.errno)), TPS)
