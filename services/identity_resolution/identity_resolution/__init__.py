"""identity-resolution: who is this person in our platform? (docs/matching.md)

Consumes `identity.events` (profile operations, keyed by workspace so one workspace's
operations apply in order), `cohort.changes` (one `CohortChangesAccepted` per producer
request, keyed per cohort, up to 1,000 changes) and its own `identity.forwarded`. Produces
`membership.resolved` (`MembershipResolvedBatch`: rows of matched changes, each record on
the partition of the users in it, so per-user order holds downstream),
`membership.unmatched` (`MembershipUnmatchedBatch`, per cohort, each row with its reason),
`identity.merges` (`ProfilesMerged`, `ProfileDeleted`) and the compacted `identity.profiles`
(`ProfileUpdated`; a tombstone when a profile is deleted or merged away). Poison records go
to `<topic>.dlq`.

Design decisions:
- Rules once, in Python (`domain/`): matching, parking, profile operations. The shared
  engine (`cohort_shared.stream.engine`) runs them; the only Lua is the engine's generic commit.
- A workspace's identity book (lookup tables, profiles, parked changes) lives in the task of
  the partition its identity.events go to (`adapters/book_store.py`, the one key layout), and
  only that task writes it: profile operations and parking are decided in one place, in
  order, so parking an unknown identifier cannot race the track that creates it.
- cohort.changes is resolved by whichever task owns its partition, reading the book only:
  known identifiers go straight out; unknown ones, and any with changes still on their way
  to the book, are forwarded to the book's task (counted per identifier until it committed
  them), so a later change never overtakes an earlier one of the same identifier.
- Internal user IDs are deterministic, `"u" + sha1(f"{ws}|{request_id}|{index}")[:23]`: a
  replay creates the same ID, unique across workspaces.
- `source_id` of a cohort change is `f"{request_id}:{index}"`, stable across replays; a parked
  change keeps its original one when it is applied later (`was_parked`).
- Time is read once per batch and passed into the rules, so a batch is deterministic.
- Known limit: a workspace's book is one task's state, so one shard holds it (about 250 bytes
  a profile); resolution reads it from every task, and memberships spread everywhere.
"""
