"""BulkHistogram shows on /metrics what prometheus_client's Histogram shows for the same
observations, taken many at a time."""

from cohort_shared.stream.metrics import BulkHistogram
from prometheus_client import CollectorRegistry, Histogram, generate_latest

BUCKETS = (0.01, 0.1, 1, 10)
OBSERVED = [(0.0, 3), (0.01, 2), (0.05, 1), (0.1, 4), (0.7, 5), (10.0, 1), (42.5, 2)]


def exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_many_at_once_equals_one_at_a_time_on_every_bucket_bound():
    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    plain = Histogram("latency_seconds", "what it measures", buckets=BUCKETS, registry=one_by_one)
    many = BulkHistogram("latency_seconds", "what it measures", BUCKETS, registry=bulk)
    for value, times in OBSERVED:
        for _ in range(times):
            plain.observe(value)
        many.at(value).inc(times)  # as TaskContext.count records it after a commit
    assert exposition(bulk) == exposition(one_by_one)
    assert 'latency_seconds_bucket{le="0.01"} 5.0' in exposition(bulk)  # a value on a bound is in it
