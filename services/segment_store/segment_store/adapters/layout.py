"""Redis key layout of segment-store, defined here and nowhere else.

Each task (partition number p) keeps the state of the users, and the counters of the cohorts,
that hash to it, under its hash tag `<prefix>{segment-store:p}` (one Redis Cluster slot), so
one workspace spreads over every shard. Users are numbered per workspace and task (1, 2, 3,
… in order of first sight); numbers bucket by `WIDTH` in sets and by `HASH_WIDTH` in hashes
(<b> below), so no key grows with the workspace. A cohort is named in keys by its code
(`cohort_code`). This is layout 3 (`LAYOUT`); migration.py moves a task's state from layouts 1
and 2.

  seq:<ws>              string  last user number
  un:<ws>:<hhh>         hash    user_id → n [+ \\x1f + gone]      (<hhh>: sha1's first 3 hex digits)
                                gone: "d" deleted | "m\\x1f<kept>" merged | "t" tombstoned; n is
                                empty for a user gone before it was numbered (`encode_entry`)
  rc:<ws>:<b>           hash    n → "0|1" + user_id [+ \\x1f + external_id]   (1: from identity.profiles)
  uf:<ws>:<b>           hash    n → JSON list of the profile's alias/device index fields
  ix:<ws>:<hhh>         hash    "x\\x1f<ext>" | "a\\x1f<label>\\x1f<name>" | "d\\x1f<device>" → user_id
  wait:<ws>:<hhh>       hash    user_id → JSON {"a": announced, "e": early, "h": held} (domain Wait)
  all:<ws>:<b>          set     numbers of every profile ("excludes" / "not")
  uc:<ws>:<b>           hash    n → "code code …" (the user's cohorts), or "*": then rv:<ws>:<n>
  rv:<ws>:<n>           set     codes of a user in more than INLINE cohorts
  m:<ws>:<code>:<b>     set     members of a cohort whose number is in bucket b
  cm:<ws>:<code>        hash    p partner, c cohort_id, nm name (in the cohort's own task), ua updated
                                at, mc member count, ap applied, al already in state, rc received,
                                pd dropped pre_2010, u:<reason> unmatched — this task's share
  cohorts:<ws>          hash    code → partner \\x1f cohort_id, for cohorts this task holds data of
  usage:<ws>            string  data points, this task's share
  uh:<ws>               hash    "YYYY-MM-DDTHH" (UTC hour applied) → data points, this task's share
  uw:<hhh>              hash    user_id → workspace (identity.profiles tombstones name no workspace)
  layout                string  the layout the task's state is in ("3"; none: 1, or no state yet)
Segment definitions are workspace data, not a task's: `<prefix>segment-store:{<ws>}:seg`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cohort_shared.redis_store import KeySpace
from cohort_shared.state.keys import TaskKeys, spread
from cohort_shared.user_refs import UserRef

from ..settings import SERVICE

WIDTH = 512
"""User numbers per bucket of a set. Must not exceed Redis's set-max-intset-entries (default
512): up to there a set is an intset, searched by bisection."""
HASH_WIDTH = 128
"""User numbers per bucket of a hash keyed by number. A hash of up to 512 fields is a listpack
(hash-max-listpack-entries), searched field by field: at 512, a fifth of Redis's main thread
in an import went to those scans (README Performance); at 128, a quarter as much, for ~1 B
more per user."""
LAYOUT = 3
"""The layout described here; each task records the one its state is in (`Layout.version`)."""
INLINE = 32
"""A user's cohorts in one hash field up to this many; beyond, a set of their own."""
SEP = "\x1f"


@lru_cache(maxsize=1 << 12)
def cohort_code(partner: str, cohort_id: str) -> str:
    """A cohort's short, stable name in keys. Cached: a batch names a handful of cohorts, once
    per change applied."""
    return hashlib.sha1(f"{partner}{SEP}{cohort_id}".encode()).hexdigest()[:12]


def bucket(n: int) -> int:
    """The bucket of a set holding number n."""
    return n // WIDTH


def hash_bucket(n: int) -> int:
    """The bucket of a hash holding number n."""
    return n // HASH_WIDTH


class Layout:
    """Keys of one task."""

    def __init__(self, prefix: str, partition: int) -> None:
        self.task = TaskKeys(prefix, SERVICE, partition)
        self.partition = partition

    def k(self, *parts: str | int) -> str:
        return self.task.key(*parts)

    def seq(self, ws: str) -> str:
        return self.k("seq", ws)

    # The keys built for every user of a batch: a remembered prefix (TaskKeys.within) and the
    # user's bucket, sha1's for those keyed by user ID, the number's for those keyed by number.
    def numbers_at(self, ws: str) -> str:
        return self.task.within("un", ws)

    def records_at(self, ws: str) -> str:
        return self.task.within("rc", ws)

    def index_fields_at(self, ws: str) -> str:
        return self.task.within("uf", ws)

    def wait_at(self, ws: str) -> str:
        return self.task.within("wait", ws)

    def reverse_at(self, ws: str) -> str:
        return self.task.within("uc", ws)

    def numbers(self, ws: str, user_id: str) -> str:
        return self.numbers_at(ws) + spread(user_id)

    def records(self, ws: str, n: int) -> str:
        return self.records_at(ws) + str(hash_bucket(n))

    def index_fields(self, ws: str, n: int) -> str:
        return self.index_fields_at(ws) + str(hash_bucket(n))

    def index(self, ws: str, field: str) -> str:
        return self.task.within("ix", ws) + spread(field)

    def wait(self, ws: str, user_id: str) -> str:
        return self.wait_at(ws) + spread(user_id)

    def everyone_at(self, ws: str) -> str:
        return self.task.within("all", ws)

    def everyone(self, ws: str, b: int) -> str:
        return self.everyone_at(ws) + str(b)

    def reverse(self, ws: str, n: int) -> str:
        return self.reverse_at(ws) + str(hash_bucket(n))

    def reverse_set(self, ws: str, n: int) -> str:
        return self.k("rv", ws, n)

    def members(self, ws: str, code: str, b: int) -> str:
        return self.task.within("m", ws, code) + str(b)

    def members_prefix(self, ws: str, code: str) -> str:
        return self.k("m", ws, code)

    def everyone_prefix(self, ws: str) -> str:
        return self.k("all", ws)

    def records_prefix(self, ws: str) -> str:
        return self.k("rc", ws)

    def counters(self, ws: str, code: str) -> str:
        return self.k("cm", ws, code)

    def cohorts(self, ws: str) -> str:
        return self.k("cohorts", ws)

    def usage(self, ws: str) -> str:
        return self.k("usage", ws)

    def usage_hours(self, ws: str) -> str:
        return self.k("uh", ws)

    def user_workspace(self, user_id: str) -> str:
        return self.k("uw", spread(user_id))

    @property
    def version(self) -> str:
        return self.k("layout")

    def scratch(self, nonce: str) -> str:
        """A temporary key of this task, for segment evaluation."""
        return self.k("tmp", nonce)


def segments_key(prefix: str, ws: str) -> str:
    return KeySpace(prefix, SERVICE).workspace(ws, "seg")


def external_id_field(external_id: str) -> str:
    """The profile index's field (`ix:`) for an external ID."""
    return f"x{SEP}{external_id}"


def alias_field(label: str, name: str) -> str:
    return f"a{SEP}{label}{SEP}{name}"


def device_field(device_id: str) -> str:
    return f"d{SEP}{device_id}"


def ref_field(ref: UserRef) -> str:
    """The profile index's field for the identifier a user_ref names (not an internal ID)."""
    if ref.kind == "external_id":
        return external_id_field(ref.value)
    if ref.kind == "alias":
        return alias_field(ref.label or "", ref.value)
    if ref.kind == "device_id":
        return device_field(ref.value)
    raise ValueError("an internal user ID is not an index key")


def encode_record(user_id: str, external_id: str | None, from_profile: bool) -> str:
    return ("1" if from_profile else "0") + user_id + (SEP + external_id if external_id is not None else "")


def decode_record(raw: bytes | str) -> tuple[str, str | None, bool]:
    """(user_id, external_id, whether it came from identity.profiles)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    user_id, sep, external_id = text[1:].partition(SEP)
    return user_id, external_id if sep else None, text[0] == "1"


def encode_entry(n: int | None, gone: str | None) -> str:
    """A user's `un:` field: its number, and why it is gone if it is."""
    return ("" if n is None else str(n)) + ("" if gone is None else SEP + gone)


def decode_entry(raw: bytes | str) -> tuple[int | None, str | None]:
    """(number or None, why it is gone or None)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    n, sep, gone = text.partition(SEP)
    return (int(n) if n else None), (gone if sep else None)
