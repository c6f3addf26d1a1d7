"""Before any fault: a data import key, the cohorts named, every profile created and confirmed
applied, each profile's internal user ID looked up, and the volatile profiles' memberships
imported and confirmed, so the oracle starts from a state the system is known to share."""

from __future__ import annotations

import asyncio
import itertools
import time

from .api import Refused, SystemApi
from .oracle import Oracle
from .producer import Sent
from .workload import Workload

BATCH = 500


async def run_prelude(api: SystemApi, workload: Workload, oracle: Oracle, sent: Sent, timeout: float) -> dict[str, str]:
    """Returns profile label -> internal user ID."""
    await api.create_data_import_key()
    for cohort in workload.cohorts:
        await api.name_cohort(cohort)
    for action, group in itertools.groupby(workload.profile_ops, key=lambda op: op.action):
        ops = list(group)
        for start in range(0, len(ops), BATCH):
            _accepted(await api.send_profile_ops(action, ops[start:start + BATCH]))
        for op in ops:
            oracle.apply_profile_op(op)
    # identity.events is keyed by workspace: one partition, applied in order, so the last
    # profile op applied means every one is.
    last = workload.profile_ops[-1]
    await _until(lambda: api.identity(last.ident.ref),
                 lambda found: found is not None and (found["identified"] or last.action != "identify_device"),
                 timeout, f"the last profile op ({last.ident.ref}) applied")
    user_ids = await _look_up_user_ids(api, list(oracle.profiles), timeout)

    await asyncio.gather(*(_send_in_order(api, [r for r in workload.volatile_prelude if r.cohort == cohort], sent)
                           for cohort in workload.cohorts))
    for request in workload.volatile_prelude:
        oracle.apply_import(request)
    for _, cohort_id in workload.cohorts:
        want = len(oracle.members[cohort_id])
        await _until(lambda c=cohort_id: api.cohort(c), lambda found, w=want: found and found["member_count"] == w,
                     timeout, f"{cohort_id} has its {want} volatile members")
    await _confirm_volatile_memberships(api, workload, oracle)
    return user_ids


def _accepted(outcome) -> None:
    if outcome.response is None or outcome.response.status_code != 202:
        raise Refused(f"profile request refused: {outcome.response.status_code} {outcome.response.text[:300]}")


async def _send_in_order(api: SystemApi, requests, sent: Sent) -> None:
    for request in requests:
        sent.imports[request.index] = await api.send_changes(request)
        _accepted(sent.imports[request.index])


async def _look_up_user_ids(api: SystemApi, labels: list[str], timeout: float) -> dict[str, str]:
    limit = asyncio.Semaphore(16)

    async def one(label: str) -> tuple[str, str]:
        async with limit:
            found = await _until(lambda: api.identity(label), lambda f: f is not None, timeout, f"{label} known")
            return label, found["user_id"]

    return dict(await asyncio.gather(*(one(label) for label in labels)))


async def _confirm_volatile_memberships(api: SystemApi, workload: Workload, oracle: Oracle) -> None:
    limit = asyncio.Semaphore(16)

    async def one(ref: str) -> None:
        async with limit:
            found = await api.user_cohorts(ref)
        have = {c["cohort_id"] for c in (found or {}).get("cohorts", [])}
        want = {c for c, members in oracle.members.items() if ref in members}
        if have != want:
            raise AssertionError(f"prelude: {ref} is in {sorted(have)}, expected {sorted(want)}")

    await asyncio.gather(*(one(ident.ref) for ident in workload.volatile))


async def _until(probe, done, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"prelude: not {what} within {timeout:.0f} s (last: {str(result)[:200]})")
        await asyncio.sleep(0.3)
