"""Stream state in Redis, partitioned like the Kafka topics it comes from.

A *task* is one partition number across a service's input topics (they are co-partitioned:
the same key lands on the same partition number in each). Everything a task writes lives
under one Redis Cluster hash tag, `<prefix>{<service>:<partition>}` (`keys.TaskKeys`), so:
- a workspace's state spreads over every shard of a cluster (its users, cohorts and
  identifiers hash to different partitions), and
- one task's atomic write touches one slot: `commit.Commit` applies a precomputed write-set
  (`writes.WriteSet`), checks the task's fence, records tracking and stores the outbox, in
  one generic Lua script that holds no rule of the product.
"""
