"""What a failure means, decided from the exception alone."""

import pytest
from aiokafka import errors as kafka_errors
from cohort_shared.faults import is_infrastructure, redis_is_unavailable
from redis import exceptions as redis_errors


@pytest.mark.parametrize("answer", [
    "NOREPLICAS Not enough good replicas to write.",
    "MISCONF Errors writing to the AOF file",
    "Command # 1 (INCRBY k 1) of pipeline caused error: NOREPLICAS Not enough good replicas to write.",
    "Command # 3 (EVALSHA abc 1 k) of pipeline caused error: ('NOREPLICAS Not enough good replicas to write.',)",
    "Command # 1 (SET k v) of pipeline caused error: (\"BUSY Redis is busy running a script.\",)",
])
def test_redis_answers_that_will_change_are_unavailability(answer):
    assert redis_is_unavailable(redis_errors.ResponseError(answer))


@pytest.mark.parametrize("answer", [
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR value is not an integer",
    "Command # 1 (INCRBY k x) of pipeline caused error: ERR value is not an integer (mentions OOM later)",
    "FENCED instance 2 is not the owner",
])
def test_other_redis_answers_are_not(answer):
    assert not redis_is_unavailable(redis_errors.ResponseError(answer))


def test_a_cluster_nobody_answers_for_is_unavailability():
    unreachable = redis_errors.RedisClusterException(
        "Redis Cluster cannot be connected. Please provide at least one reachable node: Error 111")
    assert redis_is_unavailable(unreachable)


def test_a_cause_chain_is_followed():
    try:
        try:
            raise redis_errors.ReadOnlyError("READONLY You can't write against a read only replica.")
        except redis_errors.ReadOnlyError as inner:
            raise RuntimeError("commit failed") from inner
    except RuntimeError as outer:
        assert is_infrastructure(outer)


def test_a_record_too_large_is_infrastructure_not_poison():
    assert is_infrastructure(kafka_errors.MessageSizeTooLargeError())
    assert not is_infrastructure(ValueError("bad field"))
