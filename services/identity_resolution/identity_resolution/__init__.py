"""identity-resolution: who is this person in our platform? (SPEC §3)

Consumes `identity.events` (profile operations, keyed by workspace so one workspace's
operations apply in order) and `cohort.changes` (one `CohortChangesAccepted` per producer
request, keyed per cohort, up to 1,000 changes). Produces `membership.resolved` (one
`MembershipResolved` per matched change, keyed by internal user ID, so per-user order holds
downstream), `membership.unmatched` (`MembershipUnmatched` with its reason; `parked_until`
set for parked ones), `identity.merges` (`ProfilesMerged`, `ProfileDeleted`) and the
compacted `identity.profiles` (`ProfileUpdated` after every change of a profile's
identifiers; a tombstone — key user ID, value None — when a profile is deleted or merged
away). Poison records (undecodable, schema-invalid) go to `<topic>.dlq`; the next is processed.

Design decisions:
- Plain aiokafka through `cohort_shared.stream.processor.TransactionalProcessor`, not faust: faust's
  exactly_once mode has known duplicate and hang bugs, and we need batch consumption,
  static group membership and one Redis round trip per batch.
- Delivery: transactional. Every input record is applied by ONE call of a Lua script
  (`adapters/identity.lua`, wrapped in `TrackedScript`): atomic, applied at most once per
  record (tracking), its outputs stored with the effect (outbox) and published with the
  consumed offsets in one Kafka transaction. A cohort.changes record resolves all its
  identifiers in that one call; a batch's calls are pipelined in one round trip.
- Lua, not MULTI, because identity.events and cohort.changes partitions are processed
  concurrently, possibly by different instances, and touch the same lookup tables: parking
  an unknown identifier must not race the track that creates it and drains what is parked.
  All keys one call touches belong to one workspace (`{ws}` hash tag), tracking keys too.
- Redis per workspace: external ID → user, alias (label + name) → user, device ID → user,
  and per profile its external ID (identified iff it has one), how it was created
  (identified / anonymous / alias), its aliases and its devices; parked changes per
  identifier and cohort, with a TTL of the park window.
- Internal user IDs are deterministic, `"u" + sha1(f"{ws}|{request_id}|{index}")[:23]`, so
  a replay creates the same ID, and unique across workspaces (segment-store keys
  identity.profiles tombstones by user ID alone).
- The rules live once in `domain/` as pure Python and are mirrored in Lua; one table of
  scenarios drives both (a unit test, and an integration test on a real Redis).
- `source_id` of a cohort change is `f"{request_id}:{index}"`, stable across replays; a
  parked change keeps its original one when it is applied later (`was_parked=True`).
- Time is passed into the script (never read inside it), so Python and Lua agree and a
  replayed call is deterministic.
- Known limit: with several instances, the outputs of an identity.events record and of a
  cohort.changes record are committed by whichever instances own their partitions, so two
  effects applied in one order in Redis can reach Kafka in the other (a parked add drained
  by a track, then a later remove of the same user and cohort; or a change resolved to a
  profile that a merge removes a moment later). One instance keeps Redis order (a batch is
  one transaction, applied in order). segment-store should send late changes of a merged
  profile to the kept one, drop those of a deleted one, and order by `accepted_at`.
"""
