"""Zombie fencing for transactional offset commits (KIP-447), which aiokafka lacks.

aiokafka sends TxnOffsetCommit v0: offsets without the consumer group's generation, so the
broker accepts them from an instance that has already lost its partitions (frozen past its
session timeout, then resumed), and both that zombie and the new owner can commit the same
records' outputs. v3 carries the generation, member ID and group instance ID; the group
coordinator then refuses a commit from an old generation (ILLEGAL_GENERATION,
UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) and the transaction can only be aborted.

`install()` replaces aiokafka's handler with one that sends v3 when the broker speaks it,
with the metadata of the consumer registered for the group (`register_group`), and turns
those refusals into an abortable transaction error (`ConsumerGroupFenced`) instead of
aiokafka's default of killing the producer. Installed once, at import of `cohort_shared.eos`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import NamedTuple

from aiokafka import errors as Errors
from aiokafka.producer import sender as aiokafka_sender
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.transaction import TxnOffsetCommitRequest_v0
from aiokafka.protocol.types import CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)


class GroupMetadata(NamedTuple):
    """What the group coordinator checks: the consumer's current membership."""

    generation_id: int
    member_id: str
    group_instance_id: str | None


class ConsumerGroupFenced(Errors.KafkaError):
    """The group coordinator refused this instance's offsets: it is no longer the member
    that owns them (a rebalance moved its partitions). The transaction must be aborted."""

    retriable = False


_FENCING_ERRORS = (Errors.IllegalGenerationError, Errors.UnknownMemberIdError, Errors.RebalanceInProgressError)
FENCED_INSTANCE_ID = 82  # not among aiokafka's error classes
_GROUPS: dict[str, Callable[[], GroupMetadata]] = {}


def register_group(group_id: str, metadata: Callable[[], GroupMetadata]) -> None:
    """Offsets committed for `group_id` carry what `metadata()` returns at send time."""
    _GROUPS[group_id] = metadata


def unregister_group(group_id: str) -> None:
    _GROUPS.pop(group_id, None)


class TxnOffsetCommitResponse_v3(Response):
    API_KEY = 28
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(("partition_index", Int32), ("error_code", Int16), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 28
    API_VERSION = 3
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("committed_metadata", CompactString("utf-8")),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class FencedTxnOffsetCommitRequest(Request[TxnOffsetCommitRequest_v0 | TxnOffsetCommitRequest_v3]):
    """v3 with the group's metadata where the broker speaks it; v0 (as aiokafka) otherwise."""

    API_KEY = 28

    def __init__(self, transactional_id: str, group_id: str, producer_id: int, producer_epoch: int,
                 offsets: dict[str, list[tuple[int, int, str]]], metadata: GroupMetadata | None) -> None:
        self._args = (transactional_id, group_id, producer_id, producer_epoch)
        self._offsets = offsets
        self._metadata = metadata or GroupMetadata(-1, "", None)

    def build(self, request_struct_class):
        if request_struct_class is TxnOffsetCommitRequest_v0:
            return TxnOffsetCommitRequest_v0(*self._args, list(self._offsets.items()))
        topics = [(topic, [(p, offset, -1, meta, {}) for p, offset, meta in parts], {})
                  for topic, parts in self._offsets.items()]
        return TxnOffsetCommitRequest_v3(*self._args, *self._metadata, topics, {})


class FencedTxnOffsetCommitHandler(aiokafka_sender.TxnOffsetCommitHandler):
    """aiokafka's handler, sending the group metadata and aborting (not dying) when fenced."""

    def create_request(self):
        txn_manager = self._sender._txn_manager
        offsets: dict[str, list[tuple[int, int, str]]] = collections.defaultdict(list)
        for tp, offset in sorted(self._offsets.items()):
            offsets[tp.topic].append((tp.partition, offset.offset, offset.metadata))
        metadata = _GROUPS.get(self._group_id)
        return FencedTxnOffsetCommitRequest(
            txn_manager.transactional_id, self._group_id, txn_manager.producer_id,
            txn_manager.producer_epoch, offsets, metadata() if metadata else None,
        )

    def handle_response(self, resp):
        if isinstance(resp, TxnOffsetCommitResponse_v3):
            errors = [(name, [(p, code) for p, code, _ in parts]) for name, parts, _ in resp.topics]
        else:
            errors = resp.errors
        for topic, partitions in errors:
            for partition, error_code in partitions:
                error_type = Errors.for_code(error_code)
                if error_type in _FENCING_ERRORS or error_code == FENCED_INSTANCE_ID:
                    name = "FENCED_INSTANCE_ID" if error_code == FENCED_INSTANCE_ID else error_type.__name__
                    log.warning("offsets for %s[%d] refused by the group coordinator (%s): this instance "
                                "no longer owns them", topic, partition, name)
                    txn_manager = self._sender._txn_manager
                    txn_manager.error_transaction(ConsumerGroupFenced(name))
                    # The caller gets this error from its offsets; the waiter's copy is
                    # replaced when it aborts, so mark it seen instead of logging it unretrieved.
                    txn_manager._transaction_waiter.exception()
                    return None
        return super().handle_response(_V0Errors(errors))


class _V0Errors(NamedTuple):
    errors: list


def install() -> None:
    """Make every transactional producer in this process commit offsets with v3 (idempotent)."""
    aiokafka_sender.TxnOffsetCommitHandler = FencedTxnOffsetCommitHandler


__all__ = ["ConsumerGroupFenced", "GroupMetadata", "TopicPartition", "install", "register_group"]
