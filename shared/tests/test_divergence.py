"""How Redis's progress and Kafka's committed offset are compared at assignment."""

import pytest
from cohort_shared.stream.divergence import compare


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
