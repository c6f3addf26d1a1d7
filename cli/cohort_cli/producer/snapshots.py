"""The last successful sync of each cohort, kept locally so the next sync sends only the diff.

A snapshot is replaced atomically (temp file, fsync, rename) and only after every batch of
a sync was accepted, so a failed or interrupted sync leaves the previous one in place and
the next sync sends the same diff again (adds and removes are set operations: harmless).
It also counts the successful syncs behind it, so separate runs of `cohort sync` number
their syncs from the cohort's history rather than each starting at 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..identifiers import Identifier

FORMAT_VERSION = 1


class SnapshotError(RuntimeError):
    """A snapshot file that cannot be read: better to stop than to forget removals."""


@dataclass(frozen=True)
class SnapshotKey:
    """Which cohort of which workspace: `namespace` is the workspace name, or a digest of
    the ingest URL and data import key when no workspace was named (never the key itself)."""

    namespace: str
    partner: str
    cohort_id: str

    @classmethod
    def for_key(cls, ingest_url: str, data_import_key: str, partner: str, cohort_id: str) -> SnapshotKey:
        digest = hashlib.sha256(f"{ingest_url}\n{data_import_key}".encode()).hexdigest()[:16]
        return cls(f"key-{digest}", partner, cohort_id)


@dataclass(frozen=True)
class Snapshot:
    members: frozenset[Identifier]
    synced_at: datetime
    created_at: datetime | None = None  # what the producer reported as the cohort's creation time
    syncs: int = 1  # successful syncs so far, this one included; files written before the count existed say 1


class SnapshotStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: SnapshotKey) -> Path:
        # Cohort IDs are free text: a readable slug plus a digest keeps file names safe and unique.
        slug = re.sub(r"[^A-Za-z0-9_-]", "_", key.cohort_id)[:60]
        digest = hashlib.sha256(key.cohort_id.encode()).hexdigest()[:12]
        namespace = re.sub(r"[^A-Za-z0-9_-]", "_", key.namespace)
        return self.root / namespace / key.partner / f"{slug}-{digest}.json"

    def load(self, key: SnapshotKey) -> Snapshot | None:
        """The last successful sync, or None when the cohort was never synced from here."""
        path = self.path_for(key)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise SnapshotError(f"cannot read snapshot {path}: {error}") from None
        try:
            if document["version"] != FORMAT_VERSION or document["cohort_id"] != key.cohort_id:
                raise ValueError("written for another cohort or format")
            members = frozenset(Identifier.from_json(item) for item in document["members"])
            created_at = document.get("created_at")
            syncs = document.get("syncs", 1)
            if not isinstance(syncs, int) or syncs < 1:
                raise ValueError(f"syncs must be a positive whole number, not {syncs!r}")
            return Snapshot(
                members,
                datetime.fromisoformat(document["synced_at"]),
                datetime.fromisoformat(created_at) if created_at else None,
                syncs,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(f"snapshot {path} is not valid ({error}); move it away to start over") from None

    def save(
        self,
        key: SnapshotKey,
        members: Iterable[Identifier],
        created_at: datetime | None = None,
        now: datetime | None = None,
        syncs: int = 1,
    ) -> Path:
        """Replace the snapshot atomically: readers see the old one or the new one, never half."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "version": FORMAT_VERSION,
            "partner": key.partner,
            "cohort_id": key.cohort_id,
            "synced_at": (now or datetime.now(UTC)).isoformat(),
            "created_at": created_at.isoformat() if created_at else None,
            "syncs": syncs,
            "members": [identifier.to_json() for identifier in sorted(members)],
        }
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(document, file, separators=(",", ":"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)
        return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
