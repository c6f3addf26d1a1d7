"""Applies segment-store's input topics to Redis exactly once and publishes `membership.changes`.

Delivery semantics: transactional. Input is read `read_committed` with manual commits; each
record's effect is idempotent by tracking; output and input offsets go out in one Kafka
transaction (`cohort_shared.stream.processor.TransactionalProcessor` + `TrackedScript`).

One batch, step by step:
1. The consumer (group `segment-store`, static member `<group>.<INSTANCE_ID>`) fetches records.
2. Each record becomes one operation (adapters/lua/<operation>.lua) of the tracked batch
   script; a call applies a run of up to RUN_LENGTH records atomically. If a
   record's offset is already recorded for (group, topic, partition, workspace), the call
   only returns the outputs stored with it (a replay). Otherwise it applies the membership
   change with its counters (member count, applied / already_in_state, data points), builds
   the `MembershipChanged` events, stores them under the offset ("outbox") and records the
   offset ("tracking"). `event_id` is uuid5 of the change's identity (workspace, partner,
   cohort, user, change, cause, source input); `occurred_at` is the batch's apply time, passed
   in as an argument and stored with the events. Every key the call touches, tracking
   included, carries the workspace hash tag: one Redis Cluster slot.
3. The processor sends all the outputs and commits the consumed offsets in ONE Kafka
   transaction (transactional.id `<group>.<INSTANCE_ID>`), then drops the outbox entries.

Why a SIGKILL at any moment neither loses nor duplicates an event:
- before a record's Lua call: nothing of it exists; its offset is not committed, so it is
  read again after the restart and applied then;
- during the call: Redis runs a script atomically (effect, outbox and tracking all or nothing);
- after the call, before the Kafka commit: the open transaction never commits. The restarted
  instance (same INSTANCE_ID, so the same transactional.id) aborts it on start-up when it
  fences the old producer epoch; read_committed consumers never see those events. The
  records come again from the last committed offset, their calls find the offset recorded
  and return the stored events, byte for byte (same event_id, same occurred_at), which the
  new transaction publishes once. No state changes twice;
- during the commit: a Kafka transaction commits atomically, events and offsets together;
  once the coordinator has the decision it completes it even if the producer died;
- after the commit: the records are never read again; only outbox garbage is left.
Per-user order: a user's imports all come from one partition of `membership.resolved`
(keyed by user), are applied in offset order and published in that order, keyed by user.

Limitations, stated plainly:
- Zombie fencing. aiokafka's `send_offsets_to_transaction` sends no consumer-group
  generation (no KIP-447), so the broker cannot refuse offsets from an instance that has
  lost its partitions. Fencing rests on static membership plus one transactional.id per
  instance: a restart with the same INSTANCE_ID fences the previous incarnation. An instance
  that stalls past the session timeout while its partitions move to another instance (with
  another transactional.id) is not fenced: both may publish the same batch. Redis tracking
  still applies the effect once and both publish the identical stored events, so the worst
  case is a repeated event with the same event_id. Give each instance a stable INSTANCE_ID
  (e.g. a StatefulSet ordinal) and a session timeout longer than any pause.
- A merge's events come from the merged user's partition of `identity.merges` but concern
  the kept user too, and a crash can leave records of several topics applied but not
  published. The processor's in-flight marks (cohort_shared.stream.partitions) make the next
  owner republish those first, before applying anything else, so apply order is publish
  order for every user.
Cross-topic order is not guaranteed either; domain/membership.py says how late input is treated.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from cohort_shared import schemas as s
from cohort_shared import topics as t
from cohort_shared.stream.outgoing import Outgoing, dead_letter, describe_rejection
from cohort_shared.stream.processor import TransactionalProcessor
from cohort_shared.stream.tracking import Tracking
from prometheus_client import Counter
from pydantic import ValidationError

from ..settings import SERVICE, SegmentSettings
from .layout import user_to_workspace_key, workspace_base
from .scripts import Scripts

log = logging.getLogger(__name__)

INPUT_TOPICS = (t.MEMBERSHIP_RESOLVED, t.MEMBERSHIP_UNMATCHED, t.COHORT_META, t.IDENTITY_MERGES, t.IDENTITY_PROFILES)
# Records per script call: long enough to amortise the call, short enough that Redis is
# never blocked for long (a few milliseconds at most).
RUN_LENGTH = 200
CHANGES = Counter("segment_membership_changes_total", "membership.changes events published", ["change", "cause"])


@dataclass(frozen=True)
class Call:
    """One tracked script call: which script, in which workspace, its arguments after `now`."""

    script: str
    workspace: str
    args: list


def optional(value: str | None) -> list[str]:
    """An optional string as two Lua arguments: the value and whether it is present."""
    return ["" if value is None else value, "0" if value is None else "1"]


def index_fields(profile: s.ProfileUpdated) -> list[str]:
    """The profile index fields (adapters/layout.py) of its aliases and devices; the external
    ID's is derived from the user record, so it is not stored twice."""
    fields = [f"a\x1f{alias.alias_label}\x1f{alias.alias_name}" for alias in profile.aliases]
    fields += [f"d\x1f{device_id}" for device_id in profile.device_ids]
    return fields


def call_for(message: s.Message) -> Call:
    """Which script applies `message`, in which workspace, with which arguments."""
    ws = message.workspace_id
    if isinstance(message, s.MembershipResolved):
        return Call("apply_change", ws, [ws, message.partner, message.cohort_id, message.user_id,
                                    *optional(message.external_id), message.change, message.source_id])
    if isinstance(message, s.MembershipUnmatched):
        return Call("count_unmatched", ws, [ws, message.partner, message.cohort_id, message.reason])
    if isinstance(message, s.CohortNamed):
        return Call("name_cohort", ws, [ws, message.partner, message.cohort_id, message.name])
    if isinstance(message, s.CohortChangesReceived):
        return Call("count_received", ws, [ws, message.partner, message.cohort_id, message.received,
                                      message.dropped_pre_2010])
    if isinstance(message, s.ProfilesMerged):
        return Call("merge_profiles", ws, [ws, message.merged_user_id, *optional(message.merged_external_id),
                                      message.kept_user_id, *optional(message.kept_external_id), message.source_id])
    if isinstance(message, s.ProfileDeleted):
        return Call("delete_profile", ws, [ws, message.user_id, *optional(message.external_id), message.source_id])
    if isinstance(message, s.ProfileUpdated):
        return Call("update_profile", ws, [ws, message.user_id, *optional(message.external_id),
                                      orjson.dumps(index_fields(message)).decode()])
    raise ValueError(f"no script applies {type(message).__name__}")


class ChangeStream:
    """The stream side of segment-store: a TransactionalProcessor whose handler is `on_records`."""

    def __init__(self, settings: SegmentSettings, client: aioredis.Redis, scripts: Scripts) -> None:
        self.settings = settings
        self.redis = client
        self.scripts = scripts
        self.topics = settings.topics
        self._base_topic = {self.topics.name(base): base for base in INPUT_TOPICS}
        self._topic_names = {t.MEMBERSHIP_CHANGES: self.topics.membership_changes}
        self.processor = TransactionalProcessor(
            settings, client, service=SERVICE, group_id=settings.group,
            topics=[self.topics.name(base) for base in INPUT_TOPICS], handler=self.on_records,
            instance_id=settings.instance, max_records=settings.batch_max_records,
            session_timeout_ms=settings.session_timeout_ms, max_restarts=settings.stream_max_restarts,
            restart_window_s=settings.stream_restart_window_seconds,
        )

    async def on_records(self, tp: TopicPartition, records: list[ConsumerRecord], tracking: Tracking) -> list[Outgoing]:
        """Apply one partition's records, runs of them per tracked batch call, all in one round
        trip; return what to publish, in order."""
        await self.scripts.ensure_loaded()
        base_topic = self._base_topic[tp.topic]
        now = s.utc_now().isoformat()
        calls: list[Call | Outgoing | None] = []  # None: a tombstone, or nothing to do
        for record in records:
            try:
                calls.append(self._decode(base_topic, record))
            except (ValidationError, ValueError) as exc:
                calls.append(dead_letter(record, describe_rejection(exc), SERVICE))
        if base_topic == t.IDENTITY_PROFILES:
            await self._resolve_tombstones(records, calls)
        runs = self._runs(records, calls)
        pipe = self.redis.pipeline(transaction=False)
        for workspace, run in runs:
            keys = [workspace_base(self.settings.redis_key_prefix, workspace)]
            tracking_keys = None
            for record, _ in run:
                tracking_keys = tracking.for_record(record, workspace)
            self.scripts.apply.queue(pipe, tracking_keys, keys,
                                     [(record.offset, call.script, [now, *call.args]) for record, call in run])
        applied = iter([raw for result in await pipe.execute() for raw in result] if runs else [])
        outputs: list[Outgoing] = []
        counts: collections.Counter = collections.Counter()
        for call in calls:
            if isinstance(call, Outgoing):
                outputs.append(call)
            elif isinstance(call, Call):
                outputs.extend(self._outputs(next(applied), counts))
        for (change, cause), n in counts.items():
            CHANGES.labels(change, cause).inc(n)
        return outputs

    @staticmethod
    def _runs(records: list[ConsumerRecord], calls: list) -> list[tuple[str, list[tuple[ConsumerRecord, Call]]]]:
        """Consecutive calls of one workspace, at most RUN_LENGTH each: one script call per run."""
        runs: list[tuple[str, list]] = []
        for record, call in zip(records, calls, strict=True):
            if not isinstance(call, Call):
                continue
            if not runs or runs[-1][0] != call.workspace or len(runs[-1][1]) >= RUN_LENGTH:
                runs.append((call.workspace, []))
            runs[-1][1].append((record, call))
        return runs

    def _outputs(self, raw: bytes, counts: collections.Counter) -> list[Outgoing]:
        """A record's stored outputs, as the script encoded them, counted by change and cause."""
        items = orjson.loads(raw)
        if not items or isinstance(items, dict):  # cjson encodes an empty table as {}
            return []
        out = []
        for item in items:
            value = item["value"]  # stored before values travelled encoded: a table
            encoded = value.encode() if isinstance(value, str) else orjson.dumps(value)
            topic = self._topic_names.get(item["topic"]) or self.topics.name(item["topic"])
            out.append(Outgoing(topic, item["key"].encode(), encoded))
            counts[item.get("change", "unknown"), item.get("cause", "unknown")] += 1
        return out

    def _decode(self, base_topic: str, record: ConsumerRecord) -> Call | None:
        if record.value is None:
            if base_topic != t.IDENTITY_PROFILES or not record.key:
                raise ValueError("a record without a value (only identity.profiles has tombstones)")
            return None  # a tombstone: its workspace is looked up in _resolve_tombstones
        return call_for(s.decode(base_topic, record.value))

    async def _resolve_tombstones(self, records: list[ConsumerRecord], calls: list) -> None:
        """identity.profiles tombstones carry only the user ID: find each one's workspace in the
        user → workspace map, which every profile update writes first (idempotent, so it may
        run before the tracked call)."""
        known: dict[str, str] = {}
        pipe = self.redis.pipeline(transaction=False)
        prefix = self.settings.redis_key_prefix
        for call in calls:
            if isinstance(call, Call) and call.script == "update_profile":
                user_id = call.args[1]
                known[user_id] = call.workspace
                pipe.hset(user_to_workspace_key(prefix, user_id), user_id, call.workspace)
        tombstoned = [i for i, call in enumerate(calls) if call is None]
        wanted = [records[i].key.decode(errors="replace") for i in tombstoned]
        for user_id in wanted:
            pipe.hget(user_to_workspace_key(prefix, user_id), user_id)
        results = await pipe.execute() if len(pipe) else []
        answers = results[len(results) - len(wanted):]
        for i, user_id, stored in zip(tombstoned, wanted, answers, strict=True):
            ws = known.get(user_id) or (stored.decode() if stored else None)
            if ws is not None:  # never seen: nothing of it to forget
                calls[i] = Call("forget_profile", ws, [ws, user_id])
