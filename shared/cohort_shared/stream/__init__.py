"""Exactly-once stream processing on Kafka and Redis, one module per job:

- `outgoing`: records to publish and dead letters;
- `scripts`: Lua scripts applied at most once per input record (tracking + outbox), fenced;
- `partitions`: what Redis keeps per input partition (owner fence, batch in flight, progress,
  divergences found, repairs asked for);
- `divergence`: how Redis's progress and Kafka's committed offsets are compared;
- `processor`: the consume / apply / publish-and-commit loop and its supervision.
"""
