"""Redis key layout of segment-store. Every key of a workspace starts with its base,
`<REDIS_KEY_PREFIX>segment-store:{<workspace>}` — the workspace is the hash tag, so a Lua
script touching any of them (and the exactly-once tracking keys, which carry the same tag)
runs in one Redis Cluster slot.

Users are numbered per workspace (1, 2, 3, … in order of first sight); numbers bucket by
`WIDTH`, and every per-user structure is split by bucket so that no key ever grows with the
workspace or the cohort:

  <base>:seq              hash   n = last user number, c = last cohort number
  <base>:un:<hhh>         hash   user_id → n   (4096 buckets by sha1(user_id); listpack-sized)
  <base>:rec:<b>          hash   n → "0|1" + user_id [+ \\x1f + external_id]   (1: from identity.profiles)
  <base>:ids:<b>          hash   n → JSON list of the profile's alias/device index fields (to unindex)
  <base>:ix:<hhh>         hash   "x\\x1f<external_id>" | "a\\x1f<label>\\x1f<name>" | "d\\x1f<device>" → user_id
                                 (4096 buckets by sha1(field))
  <base>:gone:<hhh>       hash   user_id → "d" deleted | "m\\x1f<kept>" merged | "t" tombstoned
  <base>:all:<b>          set    numbers of every profile of the workspace ("excludes"/"not")
  <base>:rev:<b>          hash   n → "k1 k2 …" the cohorts the user is in (reverse index), or "*"
                                 when there are more than 32: then they are the set <base>:rv:<n>
  <base>:c                hash   partner \\x1f cohort_id → k (cohort number)
  <base>:byid             hash   cohort_id → "k1 k2 …" (to find a cohort by its ID alone; 409 if several)
  <base>:cm:<k>           hash   p partner, c cohort_id, nm name, ua updated_at, mc member count,
                                 rc received, ap applied, al already_in_state, pd dropped pre_2010,
                                 u:<reason> unmatched
  <base>:m:<k>:<b>        set    members of cohort k whose number is in bucket b
  <base>:usage            string data points (sum of applied)
  <base>:seg              hash   segment_id → JSON {name, filter}

A cohort bucket holds at most WIDTH integers, below Redis's `set-max-intset-entries` (512 by
default), so it stays an intset: 4 bytes a member. A 10-million-member cohort is ~20,000 such
keys, none rewritten whole; member counts are counters; listings walk buckets in order.
"""

from __future__ import annotations

import hashlib

from cohort_shared.redis_store import KeySpace

from ..settings import SERVICE

WIDTH = 512
"""User numbers per bucket. Must not exceed Redis's set-max-intset-entries (default 512)."""


def workspace_base(key_prefix: str, workspace_id: str) -> str:
    return KeySpace(key_prefix, SERVICE).workspace(workspace_id)


def user_to_workspace_key(key_prefix: str, user_id: str) -> str:
    """user_id → workspace: how a tombstone on identity.profiles (no value) finds its workspace.
    Split 4096 ways like the per-workspace hashes, so each part stays listpack-encoded."""
    return KeySpace(key_prefix, SERVICE).service_wide("user-workspace", spread(user_id))


def spread(text: str) -> str:
    """The bucket of a string-keyed hash: the first 3 hex digits of its sha1 (as in common.lua)."""
    return hashlib.sha1(text.encode()).hexdigest()[:3]
