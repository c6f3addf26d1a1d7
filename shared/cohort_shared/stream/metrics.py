"""The stream processor's metrics, by group: what `/metrics` shows of every stream service."""

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("stream_records_total", "Input records processed", ["group", "topic"])
DEAD_LETTERS = Counter("stream_dead_letters_total", "Input records sent to a DLQ", ["group", "topic"])
BATCH_SECONDS = Histogram("stream_batch_seconds", "Time to apply and commit one batch", ["group"])
RETRIES = Counter("stream_retries_total", "Batches read again after a failure", ["group", "reason"])
LAG = Gauge("stream_consumer_lag", "Records not yet processed", ["group", "topic", "partition"])
LOOP_ALIVE = Gauge("stream_loop_alive", "1 while the processing loop runs", ["group"])
DIVERGED = Gauge("stream_divergence", "1 while a partition's Redis and Kafka positions disagree",
                 ["group", "topic", "partition"])
STUCK = Gauge("stream_partition_stuck", "1 while a task is held back after repeated failures", ["group", "partition"])
