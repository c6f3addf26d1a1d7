"""The Redis side of the rules: `identity.lua`, applied once per input record.

A record's whole effect — up to 1,000 identifiers resolved, or a profile operation with the
parked changes it releases — is one atomic script call, so identity.events and
cohort.changes partitions, handled concurrently by any instances, never interleave inside
one (e.g. parking an unknown identifier cannot race the track that creates it). A batch's
calls go to Redis as one pipeline: one round trip per batch.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace
from cohort_shared.schemas import Message, decode
from cohort_shared.stream.scripts import TrackedScript

from ..domain.effects import TALLY_TOPIC, Applied, Clock, Tally

SOURCE = (Path(__file__).parent / "identity.lua").read_text()


class IdentityScript:
    """Queues `identity.lua` calls: one per input record, keyed to the record's workspace."""

    def __init__(self, client: aioredis.Redis, keys: KeySpace) -> None:
        self._script = TrackedScript(client, SOURCE)
        self._keys = keys

    async def ensure_loaded(self) -> None:
        await self._script.ensure_loaded()

    def queue(
        self,
        pipe: aioredis.client.Pipeline,
        tracking: tuple[str, str],
        offset: int,
        base_topic: str,
        message: Message,
        clock: Clock,
    ) -> None:
        """Queue the call applying `message` (read from `base_topic` at `offset`) at `clock`."""
        # Nulls left out: Lua sees an absent field as nil, but a JSON null as a true value.
        payload = orjson.dumps(message.model_dump(mode="json", exclude_none=True))
        args = [
            base_topic,
            payload,
            clock.now.isoformat(),
            clock.now_ms,
            clock.park_until.isoformat(),
            clock.park_until_ms,
            clock.park_window_seconds,
            clock.max_parked,
        ]
        self._script.queue(pipe, tracking, offset, [self._keys.workspace(message.workspace_id)], args)


def parse_applied(raw: bytes | str) -> Applied:
    """What a call returned, as the domain model states it (for tests and tools; the stream
    handler publishes the raw values without parsing them)."""
    applied = Applied()
    items = orjson.loads(raw)
    for item in items if isinstance(items, list) else []:
        if item["topic"] == TALLY_TOPIC:
            applied.tally = Tally.from_json(item["value"])
        elif item.get("tombstone"):
            applied.emit(item["topic"], item["key"], None)
        else:
            value = item["value"]
            applied.emit(item["topic"], item["key"], decode(item["topic"], value if isinstance(value, str)
                                                             else orjson.dumps(value)))
    return applied
