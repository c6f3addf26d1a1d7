"""The Lua scripts of segment-store, assembled from adapters/lua/.

Each script is `common.lua` (key layout and membership primitives) plus its own body. The
write operations form one `TrackedBatchScript`: one call applies a run of records, each at
most once, their outputs stored with the effect (cohort_shared.stream). Read scripts are plain.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from cohort_shared.stream.scripts import TrackedBatchScript

from ..domain.events import EVENT_NAMESPACE

WRITES = (
    "apply_change", "merge_profiles", "delete_profile", "update_profile", "forget_profile",
    "name_cohort", "count_received", "count_unmatched",
)


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def _lua_bytes(raw: bytes) -> str:
    return '"' + "".join(f"\\{b:03d}" for b in raw) + '"'


def prelude(*, base_key_index: int) -> str:
    """What every script starts with: its base key's place in KEYS, the event namespace, common.lua."""
    header = f"local BASE = KEYS[{base_key_index}]\nlocal EVENT_NS = {_lua_bytes(EVENT_NAMESPACE.bytes)}\n"
    return header + _lua("common")


def source(name: str, *, base_key_index: int) -> str:
    """The full text of the read script `name`."""
    return prelude(base_key_index=base_key_index) + "\n" + _lua(name)


class Scripts:
    """Every script, bound to one Redis client."""

    def __init__(self, client: aioredis.Redis) -> None:
        # The write operations, all in one tracked batch script: KEYS[1], KEYS[2] are the
        # tracking, KEYS[3] the workspace's base key.
        self.apply = TrackedBatchScript(client, prelude(base_key_index=3), {name: _lua(name) for name in WRITES})
        self.evaluate = client.register_script(source("evaluate_segment", base_key_index=1))
        self.find_user = client.register_script(source("find_user", base_key_index=1))

    async def ensure_loaded(self) -> None:
        await self.apply.ensure_loaded()
