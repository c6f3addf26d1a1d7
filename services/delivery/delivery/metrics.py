"""delivery's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

FANNED_OUT = Counter("delivery_events_queued_total", "Events queued for a webhook (one per matching webhook)")
CONSUMED = Counter("delivery_change_events_total", "membership.changes records read")
DEAD_LETTERS = Counter("delivery_dead_letters_total", "membership.changes records sent to the DLQ")
ATTEMPTS = Counter("delivery_attempts_total", "Delivery attempts by result", ["result"])
LATENCY = Histogram("delivery_latency_seconds", "From the change (occurred_at) to its 2xx",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400))
RETRIES = Counter("delivery_infrastructure_retries_total", "Redis or Kafka failures retried", ["where"])
SENDERS = Gauge("delivery_active_senders", "Webhooks this instance is sending to right now")
