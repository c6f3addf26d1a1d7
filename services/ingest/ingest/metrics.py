"""Prometheus metrics of ingest (served at /metrics with the process defaults)."""

from prometheus_client import Counter, Histogram

REQUESTS = Counter("ingest_requests_total", "HTTP requests answered", ["route", "status"])
IDENTIFIERS = Counter(
    "ingest_identifiers_total", "cohort change identifiers received", ["outcome"]  # accepted | dropped_pre_2010
)
LATENCY = Histogram(
    "ingest_request_seconds", "time to answer, Kafka acks included", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
