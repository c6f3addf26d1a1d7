"""How Redis's progress and Kafka's committed offset are compared at assignment."""

import pytest
from cohort_shared.stream.divergence import after_replay, compare


@pytest.mark.parametrize(
    ("applied", "committed", "in_flight", "verdict"),
    [
        (None, None, None, "in_step"),  # nobody consumed the partition yet
        (None, 0, None, "in_step"),  # a commit before its first record claims nothing
        (9, 10, None, "in_step"),  # applied and committed up to 9
        (9, 10, 9, "in_step"),  # committed; only the in-flight mark was not dropped
        (9, 5, 9, "republish"),  # 5..9 applied, the transaction never committed
        (4, 5, 9, "republish"),  # crash between the scripts and the progress mark
        (None, None, 3, "republish"),  # the very first batch, never committed
        (3, 10, None, "redis_behind"),  # Redis lost the effects of 4..9
        (None, 10, None, "redis_behind"),  # Redis lost everything of this partition
        (2, 10, 12, "redis_behind"),  # a batch in flight, and Redis lost what came before it
        (None, 10, 12, "redis_behind"),
        (9, None, None, "kafka_behind"),  # topic recreated, or the group's offsets deleted
        (9, 3, None, "kafka_behind"),  # offsets reset backwards
    ],
)
def test_compare(applied, committed, in_flight, verdict):
    assert compare(applied, committed, in_flight) == verdict


def test_a_replayed_batch_commits_only_what_redis_tracked():
    # The batch applied before held resolved 5..9; merges joined the batch on its way round.
    commit, resume = after_replay({"resolved": 9}, {"resolved": (5, 9), "merges": (0, 3)})
    assert commit == {"resolved": 10}  # merges keeps its committed offset, whatever it is
    assert resume == {"resolved": 10, "merges": 0}


def test_a_replayed_batch_read_past_what_was_applied_is_read_again_from_there():
    commit, resume = after_replay({"resolved": 7, "merges": 2}, {"resolved": (5, 12), "merges": (3, 4)})
    assert commit == {"resolved": 8}
    assert resume == {"resolved": 8, "merges": 3}
