"""A write-set: the Redis commands one task's batch applies, computed in Python from what it
read, applied atomically by `commit.Commit`. Only plain data commands; no rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# What a write-set may do. The commit script refuses anything else.
COMMANDS = ("SADD", "SREM", "HSET", "HDEL", "HINCRBY", "INCRBY", "SET", "DEL", "EXPIRE", "HSETNX")
# Arguments per command at most, well under Lua's unpack limit (about 8,000).
CHUNK = 512
# Commands whose arguments add up: one that follows another on the same key joins it (a
# batch's HSETs of users in one bucket become one HSET, not one each).
JOINABLE = frozenset({"SADD", "SREM", "HSET", "HDEL"})

Value = str | bytes | int | float


class WriteSet:
    """Commands in order; keys interned so each travels once."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.ops: list[tuple[str, int, list[Value]]] = []

    def __len__(self) -> int:
        return len(self.ops)

    def _key(self, key: str) -> int:
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.keys)
            self.keys.append(key)
        return index

    def _add(self, command: str, key: str, args: list[Value]) -> None:
        self.ops.append((command, self._key(key), args))

    def _chunked(self, command: str, key: str, items: list[Value], per: int = 1) -> None:
        index = self._key(key)
        if self.ops and command in JOINABLE:
            last_command, last_key, last_args = self.ops[-1]
            if last_command == command and last_key == index and len(last_args) + len(items) <= CHUNK:
                last_args += items  # in place: a bucket's users join one command without copying it each time
                return
        step = CHUNK - CHUNK % per
        for start in range(0, len(items), step):
            self.ops.append((command, index, items[start:start + step]))

    def sadd(self, key: str, members: Iterable[Value]) -> None:
        self._chunked("SADD", key, list(members))

    def srem(self, key: str, members: Iterable[Value]) -> None:
        self._chunked("SREM", key, list(members))

    def hset(self, key: str, mapping: Mapping[Value, Value]) -> None:
        self.hset_pairs(key, [x for pair in mapping.items() for x in pair])

    def hset_pairs(self, key: str, fields_and_values: list[Value]) -> None:
        """`hset` of a list already flat: field, value, field, value, …"""
        self._chunked("HSET", key, fields_and_values, per=2)

    def hsetnx(self, key: str, field: Value, value: Value) -> None:
        self._add("HSETNX", key, [field, value])

    def hdel(self, key: str, fields: Iterable[Value]) -> None:
        self._chunked("HDEL", key, list(fields))

    def hincrby(self, key: str, field: Value, amount: int) -> None:
        if amount:
            self._add("HINCRBY", key, [field, amount])

    def incrby(self, key: str, amount: int) -> None:
        if amount:
            self._add("INCRBY", key, [amount])

    def set(self, key: str, value: Value, expire_seconds: int | None = None) -> None:
        self._add("SET", key, [value, "EX", expire_seconds] if expire_seconds else [value])

    def delete(self, key: str) -> None:
        self._add("DEL", key, [])

    def expire(self, key: str, seconds: int) -> None:
        self._add("EXPIRE", key, [seconds])

    def encode(self) -> list[Value]:
        """ARGV for the commit script: count, then (command, key index, argc, args…) each."""
        flat: list[Value] = [len(self.ops)]
        for command, key_index, args in self.ops:
            flat += (command, key_index, len(args), *args)
        return flat
