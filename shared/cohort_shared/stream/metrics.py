"""The stream processor's metrics, by group: what `/metrics` shows of every stream service."""

from __future__ import annotations

import bisect
import math
from itertools import accumulate

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

RECORDS = Counter("stream_records_total", "Input records processed", ["group", "topic"])
DEAD_LETTERS = Counter("stream_dead_letters_total", "Input records sent to a DLQ", ["group", "topic"])
BATCH_SECONDS = Histogram("stream_batch_seconds", "Time to apply and commit one batch", ["group"])
RETRIES = Counter("stream_retries_total", "Batches read again after a failure", ["group", "reason"])
LAG = Gauge("stream_consumer_lag", "Records not yet processed", ["group", "topic", "partition"])
LOOP_ALIVE = Gauge("stream_loop_alive", "1 while the processing loop runs", ["group"])
DIVERGED = Gauge("stream_divergence", "1 while a partition's Redis and Kafka positions disagree",
                 ["group", "topic", "partition"])
STUCK = Gauge("stream_partition_stuck", "1 while a task is held back after repeated failures", ["group", "partition"])


class BulkHistogram:
    """A histogram (no labels) that takes many observations of one value at once:
    `ctx.count(histogram.at(value), n)` records `n` of them once the batch commits, as counts
    are. segment-store observes every change's latency, and the rows of one request share
    its acceptance time, so a batch of thousands of changes makes a few observations where
    prometheus_client's Histogram takes them one at a time (0.9 µs each, 4% of segment-store).
    /metrics shows it as that Histogram would, without its `_created` sample."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...], registry=REGISTRY) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = (*map(float, buckets), math.inf)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        registry.register(self)

    def at(self, value: float) -> _Observations:
        return _Observations(self, value)

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times  # bucket `le` bound: value <= bound
        self.total += value * times

    def collect(self) -> list[HistogramMetricFamily]:
        buckets = [(floatToGoString(b), n) for b, n in zip(self.bounds, accumulate(self.counts), strict=True)]
        return [HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=self.total)]

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]


class _Observations:
    """`n` observations of one value, as `TaskContext.count` records a counter's growth."""

    __slots__ = ("histogram", "value")

    def __init__(self, histogram: BulkHistogram, value: float) -> None:
        self.histogram, self.value = histogram, value

    def inc(self, times: int) -> None:
        self.histogram.observe(self.value, times)
