"""Workspace keys in Redis, stored only as SHA-256 hashes; one store per `KeyKind` (data
import keys, REST API keys), the same code for both.

Layout (every key behind REDIS_KEY_PREFIX, per-workspace ones with the `{ws}` hash tag;
`<kind>` is the kind's name, e.g. `data-import-key`):
- `ingest:{ws}:<kind>s` hash: key_id → JSON {key_hash, masked, created_at[, name, permissions]}
- `ingest:{ws}:<kind>s:last-used` hash: key_id → ISO time of its last request
- `ingest:<kind>:<sha256>` hash: workspace_id, key_id[, permissions] — the per-request lookup

The lookup key lives in another Cluster slot than the workspace's hashes, so the writes are
ordered instead of transactional: the lookup is written last on create and deleted first
on delete. A crash between two writes leaves at worst a listed key that does not work,
never a working key that is not listed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

import orjson
import redis.asyncio as aioredis
from cohort_shared.redis_store import KeySpace

from ..domain.workspace_keys import DATA_IMPORT_KEYS, KeyKind, KeyOwner, KeyRecord, key_hash, plausible_client_secret

SERVICE = "ingest"


class KeyStore(Protocol):
    async def add(self, workspace_id: str, record: KeyRecord) -> None: ...
    async def all_in(self, workspace_id: str) -> list[KeyRecord]: ...
    async def delete(self, workspace_id: str, key_id: str) -> bool: ...
    async def owner_of(self, client_secret: object) -> KeyOwner | None: ...
    async def mark_used(self, owner: KeyOwner, now: datetime) -> None: ...


def _record_json(record: KeyRecord) -> bytes:
    body = {"key_hash": record.key_hash, "masked": record.masked, "created_at": record.created_at}
    if record.name is not None:
        body |= {"name": record.name, "permissions": list(record.permissions)}
    return orjson.dumps(body)


def _record_from(key_id: str, raw: bytes, last_used: bytes | None) -> KeyRecord:
    data = orjson.loads(raw)
    return KeyRecord(
        key_id=key_id, key_hash=data["key_hash"], masked=data["masked"],
        created_at=datetime.fromisoformat(data["created_at"]),
        last_used_at=datetime.fromisoformat(last_used.decode()) if last_used else None,
        name=data.get("name"), permissions=tuple(data.get("permissions", ())),
    )


class RedisKeyStore:
    """The key store of one kind of key, on Redis."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, kind: KeyKind = DATA_IMPORT_KEYS) -> None:
        self._redis = client
        self._keys = KeySpace(key_prefix, SERVICE)
        self._kind = kind

    def _records(self, workspace_id: str) -> str:
        return self._keys.workspace(workspace_id, f"{self._kind.name}s")

    def _last_used(self, workspace_id: str) -> str:
        return self._keys.workspace(workspace_id, f"{self._kind.name}s", "last-used")

    def _lookup(self, hashed: str) -> str:
        return self._keys.service_wide(self._kind.name, hashed)

    async def add(self, workspace_id: str, record: KeyRecord) -> None:
        await self._redis.hset(self._records(workspace_id), record.key_id, _record_json(record))
        lookup = {"workspace_id": workspace_id, "key_id": record.key_id}
        if record.permissions:
            lookup["permissions"] = " ".join(record.permissions)
        await self._redis.hset(self._lookup(record.key_hash), mapping=lookup)

    async def all_in(self, workspace_id: str) -> list[KeyRecord]:
        records = await self._redis.hgetall(self._records(workspace_id))
        last_used = await self._redis.hgetall(self._last_used(workspace_id))
        found = [_record_from(k.decode(), v, last_used.get(k)) for k, v in records.items()]
        return sorted(found, key=lambda r: (r.created_at, r.key_id))

    async def delete(self, workspace_id: str, key_id: str) -> bool:
        raw = await self._redis.hget(self._records(workspace_id), key_id)
        if raw is None:
            return False
        await self._redis.delete(self._lookup(orjson.loads(raw)["key_hash"]))  # stops working here
        await self._redis.hdel(self._records(workspace_id), key_id)
        await self._redis.hdel(self._last_used(workspace_id), key_id)
        return True

    async def owner_of(self, client_secret: object) -> KeyOwner | None:
        if not plausible_client_secret(client_secret):
            return None
        found = await self._redis.hgetall(self._lookup(key_hash(client_secret)))
        if not found:
            return None
        permissions = frozenset(found.get(b"permissions", b"").decode().split())
        return KeyOwner(found[b"workspace_id"].decode(), found[b"key_id"].decode(), permissions)

    async def mark_used(self, owner: KeyOwner, now: datetime) -> None:
        await self._redis.hset(self._last_used(owner.workspace_id), owner.key_id, now.isoformat())


class InMemoryKeyStore:
    """The same contract in a dict, for unit tests."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, KeyRecord]] = {}
        self._owners: dict[str, KeyOwner] = {}

    async def add(self, workspace_id: str, record: KeyRecord) -> None:
        self._records.setdefault(workspace_id, {})[record.key_id] = record
        self._owners[record.key_hash] = KeyOwner(workspace_id, record.key_id, frozenset(record.permissions))

    async def all_in(self, workspace_id: str) -> list[KeyRecord]:
        return sorted(self._records.get(workspace_id, {}).values(), key=lambda r: (r.created_at, r.key_id))

    async def delete(self, workspace_id: str, key_id: str) -> bool:
        record = self._records.get(workspace_id, {}).pop(key_id, None)
        if record is None:
            return False
        del self._owners[record.key_hash]
        return True

    async def owner_of(self, client_secret: object) -> KeyOwner | None:
        return self._owners.get(key_hash(client_secret)) if plausible_client_secret(client_secret) else None

    async def mark_used(self, owner: KeyOwner, now: datetime) -> None:
        records = self._records.get(owner.workspace_id, {})
        if owner.key_id in records:
            records[owner.key_id] = replace(records[owner.key_id], last_used_at=now)
