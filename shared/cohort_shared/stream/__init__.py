"""Exactly-once stream processing on Kafka and Redis, one module per job:

- `engine`: the consume / apply / commit loop every stream service runs, its supervision, and
  what a handler works with (`TaskContext`);
- `outgoing`: dead letters (reasons that name fields, never values);
- `divergence`: how Redis's tracking and Kafka's committed offsets are compared;
- `divergences`: the divergences found and the repairs operators ask for;
- `repair_api`: the operator routes for them.
The Redis side (task keys, write-sets, the one generic commit script) is `cohort_shared.state`.
"""
