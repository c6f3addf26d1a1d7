"""What a failure means: the infrastructure (retry with back-off), lost ownership (stop
working on those partitions), or something else (a bug: retry, report, never dead-letter).

Only a cause inside a record sends it to its DLQ, and that is decided where the record is
decoded, before any effect. Everything raised later is one of the kinds below.
"""

from __future__ import annotations

import asyncio
import re

from aiokafka import errors as kafka_errors
from redis import exceptions as redis_errors

# Redis answers with these prefixes when it cannot take a command right now: after a
# failover (READONLY), full (OOM), running a long script (BUSY), unable to persist
# (MISCONF), starting (LOADING), or a cluster resharding or losing a master.
_REDIS_TRANSIENT_PREFIXES = (
    "READONLY", "OOM", "BUSY", "MISCONF", "LOADING", "MOVED", "ASK", "TRYAGAIN",
    "CLUSTERDOWN", "MASTERDOWN", "NOREPLICAS", "NOSCRIPT", "UNBLOCKED",
)

# The error code opens Redis's answer; a pipeline wraps it as "Command # N (…) of pipeline
# caused error: CODE …", and a cluster pipeline as "… caused error: ('CODE …',)".
_REDIS_TRANSIENT_ANSWER = re.compile(
    r"^\s*(?:Command # \d+ .*? of pipeline caused error: \(?['\"]?)?(?:" + "|".join(_REDIS_TRANSIENT_PREFIXES) + r")\b",
    re.DOTALL,
)

_REDIS_TRANSIENT_TYPES = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.NoScriptError,
    redis_errors.ClusterError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.MovedError,
    redis_errors.AskError,
    redis_errors.MasterDownError,
    redis_errors.SlotNotCoveredError,
    # The cluster client's own "cannot be connected" / "no node for this slot" (no answer at all).
    redis_errors.RedisClusterException,
)

# aiokafka marks most transient broker errors `retriable`; these are transient too for a
# processor that will read its batch again: the broker refused a record (too large for the
# topic, topic deleted, not authorised) and an operator can fix that without losing it.
_KAFKA_TRANSIENT_TYPES = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.UnknownTopicOrPartitionError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
    kafka_errors.CoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorError,
    kafka_errors.ConcurrentTransactions,
)


class LostOwnership(Exception):
    """This instance no longer owns partitions it was working on: another instance took
    them (a rebalance while this one was frozen, or a newer incarnation)."""


class ProcessorFailed(Exception):
    """The processor cannot go on with its current clients (e.g. its producer was fenced by
    another process with the same transactional ID); they must be rebuilt."""


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def redis_is_unavailable(exc: BaseException) -> bool:
    """Redis (or its cluster) cannot serve this command right now; it will again."""
    for item in _chain(exc):
        if isinstance(item, _REDIS_TRANSIENT_TYPES):
            return True
        if isinstance(item, redis_errors.ResponseError) and _REDIS_TRANSIENT_ANSWER.match(str(item)):
            return True
    return False


def kafka_is_unavailable(exc: BaseException) -> bool:
    """Kafka cannot take or give this right now; it will again (or after an operator fix)."""
    for item in _chain(exc):
        if isinstance(item, _KAFKA_TRANSIENT_TYPES):
            return True
        if isinstance(item, kafka_errors.KafkaError) and getattr(item, "retriable", False):
            return True
    return False


def is_infrastructure(exc: BaseException) -> bool:
    """A failure of Kafka, Redis or the network, never of a record."""
    if any(isinstance(item, (asyncio.TimeoutError, ConnectionError, OSError)) for item in _chain(exc)):
        return True
    return redis_is_unavailable(exc) or kafka_is_unavailable(exc)


def is_fenced(exc: BaseException) -> bool:
    """Ownership was lost: the group refused our offsets, or Redis refused our writes."""
    from .txn_fencing import ConsumerGroupFenced

    for item in _chain(exc):
        if isinstance(item, (LostOwnership, ConsumerGroupFenced, kafka_errors.CommitFailedError,
                             kafka_errors.IllegalGenerationError, kafka_errors.UnknownMemberIdError)):
            return True
        if isinstance(item, redis_errors.ResponseError) and str(item).lstrip().startswith("FENCED"):
            return True
    return False


def is_fatal_for_clients(exc: BaseException) -> bool:
    """The producer cannot be used again: another producer with our transactional ID took
    over, or it is in a fatal state. Rebuild the clients (or end the process)."""
    for item in _chain(exc):
        if isinstance(item, (kafka_errors.ProducerFenced, kafka_errors.IllegalStateError, ProcessorFailed)):
            return True
        if type(item).__name__ in {"InvalidProducerEpoch", "InvalidProducerIdMapping", "TransactionalIdAuthorizationFailed"}:
            return True
    return False


def describe(exc: BaseException) -> str:
    """A short label for logs and metrics that names no data (no keys, no values)."""
    return type(exc).__name__
