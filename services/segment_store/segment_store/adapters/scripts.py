"""The Lua scripts of segment-store, assembled from adapters/lua/.

Each script is `common.lua` (key layout and membership primitives) plus its own body. Write
scripts are `TrackedScript`s: applied at most once per input record, their outputs stored
with the effect (cohort_shared.eos). Read scripts are plain ones.
"""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis
from cohort_shared.eos import TrackedScript

from ..domain.events import EVENT_NAMESPACE

WRITES = (
    "apply_change", "merge_profiles", "delete_profile", "update_profile", "forget_profile",
    "name_cohort", "count_received", "count_unmatched",
)


def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text()


def _lua_bytes(raw: bytes) -> str:
    return '"' + "".join(f"\\{b:03d}" for b in raw) + '"'


def source(name: str, *, base_key_index: int) -> str:
    """The full text of script `name`: its base key's place in KEYS, the event namespace, common.lua, the body."""
    header = f"local BASE = KEYS[{base_key_index}]\nlocal EVENT_NS = {_lua_bytes(EVENT_NAMESPACE.bytes)}\n"
    return header + _lua("common") + "\n" + _lua(name)


class Scripts:
    """Every script, bound to one Redis client."""

    def __init__(self, client: aioredis.Redis) -> None:
        # Tracked scripts get their own keys from KEYS[3] (KEYS[1], KEYS[2] are the tracking).
        self.writes = {name: TrackedScript(client, source(name, base_key_index=3)) for name in WRITES}
        self.evaluate = client.register_script(source("evaluate_segment", base_key_index=1))
        self.find_user = client.register_script(source("find_user", base_key_index=1))

    async def ensure_loaded(self) -> None:
        for script in self.writes.values():
            await script.ensure_loaded()
