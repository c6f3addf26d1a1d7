"""`python -m identity_resolution` as its own process: ready on the real broker and Redis,
resolves what arrives, answers the identity lookup API of SPEC §3, keeps secrets out of
its log."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from cohort_shared.testing import eventually, read_topic
from identity_resolution.settings import IdentitySettings
from identity_resolution.testing import A, D, E, add, alias_new, cohort, identify, publish, read_rows, track, user

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_service_resolves_and_answers_identity_lookups(stack_env, kafka_topics, redis_client, tmp_path: Path):
    port = free_port()
    env = {**os.environ, **stack_env, "IDENTITY_PORT": str(port), "IDENTITY_HOST": "127.0.0.1",
           "INSTANCE_ID": "service-test", "LOG_LEVEL": "DEBUG"}
    log_path = tmp_path / "identity.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "identity_resolution", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT)
    admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
    prefix = stack_env["TOPIC_PREFIX"]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async def readyz():
                try:
                    return (await client.get("/readyz")).status_code
                except httpx.TransportError:
                    assert process.returncode is None, log_path.read_text()[-2000:]
                    return None

            await eventually(readyz, until=lambda status: status == 200, timeout=30)
            settings = IdentitySettings(**stack_env)
            await publish(settings, [
                track("t1", E("u1")),
                track("t2", D("d1")),
                alias_new("a1", ("email", "a@x.com", "u1")),
                identify("i1", devices=[("u2", "d1")]),
            ])
            await read_topic(settings.kafka_bootstrap_servers, f"{prefix}identity.profiles", expected=4, timeout=30)
            await publish(settings, [cohort("c1", add(E("u1")), add(A("email", "a@x.com")), add(E("nobody")))])
            await read_rows(settings, "membership.resolved", 2)
            await read_rows(settings, "membership.unmatched", 1)

            async def get(ref, headers=admin):
                response = await client.get(f"/workspaces/acme/identities/{ref}", headers=headers)
                return response.status_code, response.json()

            u1 = {"user_id": user("t1"), "external_id": "u1", "identified": True,
                  "aliases": [{"alias_name": "a@x.com", "alias_label": "email"}], "device_ids": [], "custom_attributes": {}}
            assert await get("external_id:u1") == (200, u1)
            assert await get("alias:email:a@x.com") == (200, u1)
            assert await get(user("t1")) == (200, u1)
            # identified since: cohort import no longer matches the device, the lookup still does
            assert await get("device_id:d1") == (200, {
                "user_id": user("t2"), "external_id": "u2", "identified": True, "aliases": [], "device_ids": ["d1"],
                "custom_attributes": {}})
            assert await get("external_id:nobody") == (404, {"message": "user_ref names no profile in this workspace"})
            assert (await get("alias:email"))[0] == 400
            bad_workspace = await client.get("/workspaces/bad$ws/identities/external_id:u1", headers=admin)
            assert bad_workspace.status_code == 400 and "workspace" in bad_workspace.json()["message"]
            unauthorized = (401, {"message": "Invalid or missing operator token"})
            assert await get("external_id:u1", headers={}) == unauthorized
            assert await get("external_id:u1", headers={"Authorization": "Bearer wrong"}) == unauthorized
            assert (await client.get("/workspaces/other/identities/external_id:u1", headers=admin)).status_code == 404

            assert (await client.get("/healthz")).status_code == 200
            ready = (await client.get("/readyz")).json()
            assert (ready["ready"], ready["checks"]) == (True, {"kafka": True, "redis": True, "processor": True})
            assert ready["processor"]["state"] == "running" and ready["processor"]["assigned"] == 9
            metrics = (await client.get("/metrics")).text
            assert "identity_resolved_total 2.0" in metrics
            assert 'identity_unmatched_total{reason="unknown_external_id"} 1.0' in metrics
            assert "identity_parked_total 1.0" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
    log = log_path.read_text()
    assert "with settings" in log and "service-test" in log
    for secret in (stack_env["ADMIN_TOKEN"], stack_env["REDIS_URL"]):
        assert secret not in log
