"""Reads one profile from the Redis tables `identity.lua` keeps (for the operator API)."""

from __future__ import annotations

import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace

from ..domain.book import Profile
from ..domain.identifiers import UserRef, alias_key, is_user_id


class ProfileReader:
    """Finds the profile a `user_ref` names in a workspace."""

    def __init__(self, client: aioredis.Redis, keys: KeySpace) -> None:
        self._client = client
        self._keys = keys

    async def find(self, workspace_id: str, ref: UserRef) -> Profile | None:
        base = self._keys.workspace(workspace_id)
        if ref.kind == "user_id":
            user_id: bytes | str | None = ref.value if is_user_id(ref.value) else None
        elif ref.kind == "external_id":
            user_id = await self._client.hget(f"{base}:ext", ref.value)
        elif ref.kind == "alias":
            user_id = await self._client.hget(f"{base}:alias", alias_key(ref.label or "", ref.value))
        else:
            user_id = await self._client.hget(f"{base}:dev", ref.value)
        if not user_id:
            return None
        user = user_id.decode() if isinstance(user_id, bytes) else user_id
        key = f"{base}:p:{user}"
        # MULTI: the profile and its two sets as of one moment, never half a merge.
        pipe = self._client.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.smembers(f"{key}:aliases")
        pipe.smembers(f"{key}:devices")
        state, aliases, devices = await pipe.execute()
        if not state:
            return None
        external_id = state.get(b"ext")
        return Profile(
            user_id=user,
            created_as=state.get(b"created_as", b"identified").decode(),
            external_id=external_id.decode() if external_id is not None else None,
            aliases={a.decode() for a in aliases},
            devices={d.decode() for d in devices},
        )
