"""`python -m ingest` as its own process: it starts from the environment, becomes ready on
the real broker and Redis, serves a producer request, and never logs a secret."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from cohort_shared.testing import eventually

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_service_process_serves_and_keeps_secrets_out_of_its_log(stack_env, kafka_topics, redis_client, tmp_path: Path):
    port, partner_key = free_port(), "process-test-partner-key-123"
    env = {**os.environ, **stack_env, "PARTNER_API_KEYS": f"mixpanel={partner_key}", "INGEST_PORT": str(port),
           "INGEST_HOST": "127.0.0.1", "LOG_LEVEL": "DEBUG"}
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingest", env=env, stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            async def readyz():
                try:
                    return (await client.get("/readyz")).status_code
                except httpx.TransportError:
                    assert process.returncode is None, log_path.read_text()[-2000:]
                    return None

            await eventually(readyz, until=lambda status: status == 200, timeout=30)
            admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
            created = (await client.post("/workspaces/acme/data-import-keys", headers=admin)).json()
            assert created["rest_endpoint"] == f"http://127.0.0.1:{port}"
            response = await client.post("/partners/mixpanel/cohorts/users", json={
                "partner_api_key": partner_key, "client_secret": created["data_import_key"], "cohort_id": "c1",
                "cohort_changes": [{"user_ids": ["u1"]}]})
            assert (response.status_code, response.json()) == (202, {"message": "success", "accepted": 1, "dropped": {"pre_2010": 0}})
            assert (await client.get("/openapi.json")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 15)
    log = log_path.read_text()
    assert "starting with settings" in log
    for secret in (partner_key, stack_env["ADMIN_TOKEN"], created["data_import_key"], stack_env["REDIS_URL"]):
        assert secret not in log
