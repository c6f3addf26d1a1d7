"""schemathesis hooks for `make chaos` (loaded through SCHEMATHESIS_HOOKS, never imported by
the suite itself): every other partner-API request carries a valid partner key and data
import key, so fuzzing reaches the field checks behind the two 401s instead of stopping at
them."""

from __future__ import annotations

import itertools
import os

import schemathesis

PARTNER_KEYS = dict(entry.split("=", 1) for entry in os.environ.get("CHAOS_FUZZ_PARTNER_KEYS", "").split(",") if entry)
CLIENT_SECRET = os.environ.get("CHAOS_FUZZ_CLIENT_SECRET", "")
_every_other = itertools.cycle((True, False))


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    if not (PARTNER_KEYS and case.path.startswith("/partners/") and next(_every_other)):
        return
    partner = case.path_parameters.get("partner") if case.path_parameters else None
    if partner not in PARTNER_KEYS:
        partner = sorted(PARTNER_KEYS)[0]
        case.path_parameters = {**(case.path_parameters or {}), "partner": partner}
    if isinstance(case.body, dict):
        case.body = {**case.body, "partner_api_key": PARTNER_KEYS[partner], "client_secret": CLIENT_SECRET}
