"""schemathesis hooks for fuzzing the services (loaded through SCHEMATHESIS_HOOKS, never
imported by the suites themselves; `make chaos` and tests/e2e/test_openapi_conformance.py):

- every other partner-API request carries a valid partner key and data import key, so
  fuzzing reaches the field checks behind the two 401s instead of stopping at them;
- two rules that JSON Schema cannot state are kept out of schema-valid requests, so
  `positive_data_acceptance` still judges everything else: a `cursor` is opaque and only
  the server issues one (any other string is a 400, docs/api/README), and a merge must
  name two different profiles (the kept identifier is changed when both are the same);
  a cohort-changes request holds at most 1,000 identifiers across all its lists (each list's
  own maxItems is 1,000; a generated request over the total is cut to it);
  a webhook replay's `from` must not lie in the future (a generated one is moved to 2020),
  and a webhook URL's host must resolve to a public address (a generated URL is replaced by
  one naming a public IP address, so no DNS is needed).
"""

from __future__ import annotations

import itertools
import os

import schemathesis

PARTNER_KEYS = dict(entry.split("=", 1) for entry in os.environ.get("CHAOS_FUZZ_PARTNER_KEYS", "").split(",") if entry)
CLIENT_SECRET = os.environ.get("CHAOS_FUZZ_CLIENT_SECRET", "")
_every_other = itertools.cycle((True, False))


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    if _schema_valid(case):
        _no_invented_cursor(case)
        _two_different_profiles(case)
        _webhook_rules(case)
        _at_most_1000_identifiers(case)
    if not (PARTNER_KEYS and case.path.startswith("/partners/") and next(_every_other)):
        return
    partner = case.path_parameters.get("partner") if case.path_parameters else None
    if partner not in PARTNER_KEYS:
        partner = sorted(PARTNER_KEYS)[0]
        case.path_parameters = {**(case.path_parameters or {}), "partner": partner}
    if isinstance(case.body, dict):
        case.body = {**case.body, "partner_api_key": PARTNER_KEYS[partner], "client_secret": CLIENT_SECRET}


def _schema_valid(case) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _no_invented_cursor(case) -> None:
    if case.query and "cursor" in case.query:
        case.query = {name: value for name, value in case.query.items() if name != "cursor"}


def _two_different_profiles(case) -> None:
    if not (case.path.endswith("/users/merge") and isinstance(case.body, dict)):
        return
    updates = case.body.get("merge_updates")
    if not isinstance(updates, list):
        return
    for i, update in enumerate(updates):
        if isinstance(update, dict) and _named(update.get("identifier_to_keep")) == _named(update.get("identifier_to_merge")):
            updates[i] = {**update, "identifier_to_keep": {"external_id": f"kept-{i}"}}


def _at_most_1000_identifiers(case) -> None:
    """Entries are kept in order while they fit; the one that does not is cut to the room
    left (it keeps at least one identifier, since it was schema-valid), the rest dropped."""
    if not (case.path.endswith("/cohorts/users") and isinstance(case.body, dict)):
        return
    changes = case.body.get("cohort_changes")
    if not isinstance(changes, list):
        return
    lists = ("user_ids", "device_ids", "aliases")
    room, kept = 1000, []
    for change in changes:
        if not isinstance(change, dict):
            kept.append(change)
            continue
        size = sum(len(change[f]) for f in lists if isinstance(change.get(f), list))
        if size <= room:
            kept.append(change)
            room -= size
            continue
        if room > 0:
            for field in lists:
                if isinstance(change.get(field), list):
                    change[field] = change[field][:room]
                    room -= len(change[field])
            kept.append(change)
        break
    case.body = {**case.body, "cohort_changes": kept}


def _webhook_rules(case) -> None:
    if not ("/webhooks" in case.path and isinstance(case.body, dict)):
        return
    if case.path.endswith("/replay") and "from" in case.body:
        case.body = {**case.body, "from": "2020-01-01T00:00:00Z"}
    if isinstance(case.body.get("url"), str):
        case.body = {**case.body, "url": "https://93.184.215.14/hook"}


def _named(identifier):
    return {k: v for k, v in identifier.items() if v is not None} if isinstance(identifier, dict) else identifier
