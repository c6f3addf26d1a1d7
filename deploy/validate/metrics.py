"""The metrics the dashboard and the alert rules may use, with their labels: the names the
services export (or are to export) on /metrics. A panel or rule naming anything else is a
typo that would show "no data" forever, so the checks refuse it."""

from __future__ import annotations

METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "stream_consumer_lag": ("gauge", frozenset({"group", "topic", "partition"})),
    "stream_records_total": ("counter", frozenset({"group", "topic"})),
    "stream_dead_letters_total": ("counter", frozenset({"group", "topic"})),
    "stream_divergence": ("gauge", frozenset({"group", "topic", "partition"})),  # 1 while detected, unrepaired
    "stream_loop_alive": ("gauge", frozenset({"group"})),
    "stream_retries_total": ("counter", frozenset({"group", "reason"})),  # Kafka/Redis failures retried
    "cohort_change_latency_seconds": ("histogram", frozenset()),  # ingest's 202 to membership.changes
    "identity_parked_changes": ("gauge", frozenset({"workspace"})),
    "ingest_requests_total": ("counter", frozenset({"route", "status"})),
    "ingest_rate_limited_total": ("counter", frozenset()),
    "redis_used_memory_bytes": ("gauge", frozenset({"service"})),
    "redis_maxmemory_bytes": ("gauge", frozenset({"service"})),
}
# Labels Prometheus adds to every scraped series, and the histogram bucket bound.
TARGET_LABELS = frozenset({"instance", "job", "namespace", "pod"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_of(series: str) -> str | None:
    """The listed metric a series name belongs to (a histogram's _bucket is its histogram)."""
    if series in METRICS:
        return series
    for suffix in HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and METRICS.get(base, ("",))[0] == "histogram":
            return base
    return None
